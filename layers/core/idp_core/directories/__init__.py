"""LDAP and Active Directory user stores: settings, bind authentication and the admin's
tests of a directory (issue 5). Storage and imports build on this package."""
