"""Who may sign in, and how: local accounts, OpenID Connect, LDAP.

A package of the platform rather than of the IDE app: settings name its
backends, and the roles it hands out are the platform's (``oktoscripts.roles``), read
the same way by pages, REST, the run console and Lua. Local accounts always
sign in too, so an administrator can get in while the company's identity
provider or directory is down (README "Single sign-on").
"""
