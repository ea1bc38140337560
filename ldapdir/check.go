package ldapdir

import (
	"context"

	"github.com/go-ldap/ldap/v3"
)

// Check is for the doctor command: on a new connection of its own it
// dials, sets up TLS, binds, and reads the base DN entry, each step under
// its own Timeout. The error (a *workflow.Error with code
// workflow.CodeLookupUnavailable) says in plain words which step failed and
// what to fix; it never holds the bind password.
func (c *Client) Check(ctx context.Context) error {
	dctx, cancel := c.opContext(ctx)
	defer cancel()
	conn, err := c.dial(dctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	rctx, cancel := c.opContext(ctx)
	defer cancel()
	req := ldap.NewSearchRequest(c.baseDN, ldap.ScopeBaseObject, ldap.NeverDerefAliases,
		0, 0, false, "(objectClass=*)", []string{"distinguishedName"}, nil)
	res, err := await(rctx, conn, func(conn *ldap.Conn) (*ldap.SearchResult, error) { return conn.Search(req) })
	switch {
	case rctx.Err() != nil:
		return c.timedOut(rctx, "read of LDAP_BASE_DN")
	case ldap.IsErrorAnyOf(err, ldap.LDAPResultNoSuchObject, ldap.LDAPResultInvalidDNSyntax, ldap.LDAPResultReferral):
		return c.unavailable(err, "LDAP_BASE_DN %q does not exist on %s (check LDAP_BASE_DN, e.g. DC=corp,DC=example,DC=com)", c.baseDN, c.server)
	case err != nil:
		return c.unavailable(err, "read of LDAP_BASE_DN %q on %s failed", c.baseDN, c.server)
	case len(res.Entries) == 0:
		return c.unavailable(nil, "LDAP_BASE_DN %q on %s is not readable by LDAP_BIND_DN %q (check its read permissions)", c.baseDN, c.server, c.bindDN)
	}
	return nil
}
