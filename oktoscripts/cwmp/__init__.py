"""The TR-069 ACS.

soap / xmlsafe: reading and writing CWMP SOAP safely; http11 / httpauth: HTTP
and Basic/Digest; authentication / throttle: who a request proves to be, and
refusing guessers; acs / session: CPE sessions; tls: the HTTPS port and
https:// Connection Requests; memory: giving memory back after a burst of
connections; queue: the per-device RPC queue in MongoDB; service / client:
requests from workers over NATS; connreq: Connection Requests; events: Inform
events on JetStream; backend: the device registry and credentials; paths:
TR-098/TR-181 parameter paths; app: wiring.
"""
