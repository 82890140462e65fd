"""TR-369 (USP): the controller, its MTPs (MQTT, WebSocket), and the USP
Records and Messages built from the schema in ``proto/``."""
