"""The device registry on MongoDB: devices, their online state, device
credentials and the new-device event.

- registry.py: DeviceRegistry (upserts per protocol, reads, listing, counts,
  delete, alias, the offline sweeper, connection-request credentials)
- writes.py: how upserts reach MongoDB (bulk writes, insert races, refusals)
- batching.py: group commit of concurrent single upserts
- identity.py: the identity facts a process need not write again
- documents.py: the device document and the shapes made from it (Lua, REST)
- online.py: the online/offline rule and its settings
- credentials.py: CredentialStore (scrypt for Basic, HA1 per realm for Digest)
  and DeviceBinding (the devices a credential speaks for)
- identifiers.py: what a device identifier may be; TR-069's CPE usernames
- sealing.py: encryption of secrets the ACS must read back
- events.py: the new-device event on JetStream (announcers, listener stream)
- refresh.py: the per-protocol readers behind refresh_device_parameters
- maintenance.py: the periodic sweep and event retry the protocol processes run
- client.py: the per-process pymongo client and default registry
- models.py: the Django permissions of device edits (no table)
"""
