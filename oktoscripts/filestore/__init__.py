"""Files CPEs download (firmware images, configuration files): stored in
MongoDB (store.py), uploaded in the IDE, served by the ACS under signed,
per-device URLs (signing.py)."""
