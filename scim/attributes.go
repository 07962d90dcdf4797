package scim

import (
	"strings"

	"github.com/rosterd/roster/scim/schema"
)

// projection applies the attributes and excludedAttributes parameters
// (RFC 7644 §3.4.2.5, §3.9) with each attribute's "returned"
// characteristic: "always" attributes (id) stay whatever is asked,
// "never" attributes (password) never appear, and the others appear by
// default, unless excluded, or only when listed once attributes is given.
//
// Attributes are keyed by canonical name: the schema's spelling for core
// and common attributes ("userName", "name", "meta"), and the schema URN,
// a colon and the name for extension attributes. The key of a whole
// extension is its URN. Names a client sends are resolved through the
// schema, so case, URN prefixes and sub-attributes work; names the
// schema does not know are ignored, as a client asking for an attribute
// the server lacks simply does not get it.
type projection struct {
	rt schema.ResourceType
	// only is nil when attributes was not given; otherwise the listed
	// attributes, each with the listed sub-attributes or nil for all.
	only map[string]map[string]bool
	// exclude maps excluded attributes to their excluded sub-attributes,
	// nil for the whole attribute.
	exclude map[string]map[string]bool
}

func newProjection(rt schema.ResourceType, attributes, excluded []string) *projection {
	p := &projection{rt: rt}
	if len(attributes) > 0 {
		p.only = map[string]map[string]bool{}
		for _, a := range attributes {
			p.add(p.only, a)
		}
	}
	if len(excluded) > 0 {
		p.exclude = map[string]map[string]bool{}
		for _, a := range excluded {
			p.add(p.exclude, a)
		}
	}
	return p
}

// splitList splits a comma-separated attribute list, dropping blanks.
func splitList(s string) []string {
	var out []string
	for _, a := range strings.Split(s, ",") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}

func (p *projection) add(set map[string]map[string]bool, path string) {
	for _, ext := range p.rt.Extensions {
		if strings.EqualFold(path, ext.Schema) {
			set[ext.Schema] = nil
			return
		}
	}
	urn, name, sub := schema.SplitPath(path)
	a, owner, ok := p.rt.Lookup(urn, name, "")
	if !ok {
		return
	}
	key := p.key(owner, a.Name)
	if sub == "" {
		set[key] = nil
		return
	}
	s, ok := a.Sub(sub)
	if !ok {
		return
	}
	subs, seen := set[key]
	if seen && subs == nil {
		return // the whole attribute is already listed
	}
	if subs == nil {
		subs = map[string]bool{}
		set[key] = subs
	}
	subs[s.Name] = true
}

func (p *projection) key(owner, name string) string {
	if owner == p.rt.Schema {
		return name
	}
	return owner + ":" + name
}

// returned is the attribute's "returned" characteristic; the key is
// canonical.
func (p *projection) returned(key string) schema.Returned {
	urn, name := "", key
	if i := strings.LastIndexByte(key, ':'); i >= 0 {
		urn, name = key[:i], key[i+1:]
	}
	if a, _, ok := p.rt.Lookup(urn, name, ""); ok {
		return a.Returned
	}
	return schema.ReturnedDefault
}

// wants reports whether the attribute with the canonical key belongs in
// the response.
func (p *projection) wants(key string) bool {
	switch p.returned(key) {
	case schema.ReturnedAlways:
		return true
	case schema.ReturnedNever:
		return false
	}
	if subs, ok := p.exclude[key]; ok && subs == nil {
		return false
	}
	ext := p.extension(key)
	if subs, ok := p.exclude[ext]; ext != "" && ok && subs == nil {
		return false
	}
	if p.only == nil {
		return true
	}
	if _, ok := p.only[key]; ok {
		return true
	}
	if ext != "" {
		_, ok := p.only[ext]
		return ok
	}
	return false
}

// wantsSub reports whether the sub-attribute (canonical name) of the
// attribute belongs in the response.
func (p *projection) wantsSub(key, sub string) bool {
	if !p.wants(key) {
		return false
	}
	if subs := p.exclude[key]; subs[sub] {
		return false
	}
	if p.only == nil {
		return true
	}
	if subs, ok := p.only[key]; ok && subs != nil {
		return subs[sub]
	}
	return true
}

// extension returns the URN of the extension an attribute key belongs
// to, or "" for core and common attributes.
func (p *projection) extension(key string) string {
	for _, ext := range p.rt.Extensions {
		if strings.HasPrefix(key, ext.Schema+":") {
			return ext.Schema
		}
	}
	return ""
}

// include is what the Directory has to load for the response.
func (p *projection) include() Include {
	if p.rt.ID == schema.Groups.ID {
		return Include{Members: p.wants("members"), Owners: p.wants(rosterGroup + "owners")}
	}
	return Include{
		Emails:       p.wants("emails"),
		PhoneNumbers: p.wants("phoneNumbers"),
		Groups:       p.wants("groups"),
	}
}

var (
	enterprise  = schema.EnterpriseURN + ":"
	rosterGroup = schema.RosterGroupURN + ":"
)

func (p *projection) user(u *User) {
	for _, f := range []struct {
		key string
		v   *string
	}{
		{"externalId", &u.ExternalID}, {"userName", &u.UserName}, {"displayName", &u.DisplayName},
		{"nickName", &u.NickName}, {"profileUrl", &u.ProfileURL}, {"title", &u.Title},
		{"userType", &u.UserType}, {"preferredLanguage", &u.PreferredLanguage},
		{"locale", &u.Locale}, {"timezone", &u.Timezone},
	} {
		if !p.wants(f.key) {
			*f.v = ""
		}
	}
	if !p.wants("active") {
		u.Active = nil
	}
	if n := u.Name; n != nil {
		for _, f := range []struct {
			sub string
			v   *string
		}{
			{"formatted", &n.Formatted}, {"givenName", &n.GivenName}, {"familyName", &n.FamilyName},
			{"middleName", &n.MiddleName}, {"honorificPrefix", &n.HonorificPrefix}, {"honorificSuffix", &n.HonorificSuffix},
		} {
			if !p.wantsSub("name", f.sub) {
				*f.v = ""
			}
		}
		if n.empty() {
			u.Name = nil
		}
	}
	u.Emails = p.multiValues("emails", u.Emails)
	u.PhoneNumbers = p.multiValues("phoneNumbers", u.PhoneNumbers)
	u.Ims = p.multiValues("ims", u.Ims)
	u.Photos = p.multiValues("photos", u.Photos)
	u.Entitlements = p.multiValues("entitlements", u.Entitlements)
	u.Roles = p.multiValues("roles", u.Roles)
	u.X509Certificates = p.multiValues("x509Certificates", u.X509Certificates)
	u.Addresses = p.addresses(u.Addresses)
	u.Groups = p.references("groups", u.Groups)
	if e := u.Enterprise; e != nil {
		for _, f := range []struct {
			name string
			v    *string
		}{
			{"employeeNumber", &e.EmployeeNumber}, {"costCenter", &e.CostCenter}, {"organization", &e.Organization},
			{"division", &e.Division}, {"department", &e.Department},
		} {
			if !p.wants(enterprise + f.name) {
				*f.v = ""
			}
		}
		if m := e.Manager; m != nil {
			key := enterprise + "manager"
			if !p.wantsSub(key, "value") {
				m.Value = ""
			}
			if !p.wantsSub(key, "$ref") {
				m.Ref = ""
			}
			if !p.wantsSub(key, "displayName") {
				m.DisplayName = ""
			}
			if *m == (Manager{}) {
				e.Manager = nil
			}
		}
		if e.empty() {
			u.Enterprise = nil
		}
	}
	u.Custom = p.custom(u.Custom)
	u.Meta = p.meta(u.Meta)
	u.Schemas = []string{schema.UserURN}
	if u.Enterprise != nil {
		u.Schemas = append(u.Schemas, schema.EnterpriseURN)
	}
	if u.Custom != nil {
		u.Schemas = append(u.Schemas, u.Custom.URN)
	}
}

// addresses projects addresses as multiValues projects the common shape.
func (p *projection) addresses(as []Address) []Address {
	if !p.wants("addresses") {
		return nil
	}
	out := as[:0]
	for _, a := range as {
		for _, f := range []struct {
			sub string
			v   *string
		}{
			{"formatted", &a.Formatted}, {"streetAddress", &a.StreetAddress}, {"locality", &a.Locality},
			{"region", &a.Region}, {"postalCode", &a.PostalCode}, {"country", &a.Country}, {"type", &a.Type},
		} {
			if !p.wantsSub("addresses", f.sub) {
				*f.v = ""
			}
		}
		if !p.wantsSub("addresses", "primary") {
			a.Primary = nil
		}
		if !a.empty() {
			out = append(out, a)
		}
	}
	return out
}

func (p *projection) group(g *Group) {
	if !p.wants("externalId") {
		g.ExternalID = ""
	}
	if !p.wants("displayName") {
		g.DisplayName = ""
	}
	g.Members = p.references("members", g.Members)
	g.Meta = p.meta(g.Meta)
	g.Schemas = []string{schema.GroupURN}
	if g.Roster != nil {
		if g.Roster.Owners = p.references(rosterGroup+"owners", g.Roster.Owners); len(g.Roster.Owners) == 0 {
			g.Roster = nil
		} else {
			g.Schemas = append(g.Schemas, schema.RosterGroupURN)
		}
	}
}

func (p *projection) multiValues(key string, vs []MultiValue) []MultiValue {
	if !p.wants(key) {
		return nil
	}
	value, display, typ, primary := p.wantsSub(key, "value"), p.wantsSub(key, "display"), p.wantsSub(key, "type"), p.wantsSub(key, "primary")
	if value && display && typ && primary {
		return vs
	}
	out := vs[:0]
	for _, v := range vs {
		if !value {
			v.Value = ""
		}
		if !display {
			v.Display = ""
		}
		if !typ {
			v.Type = ""
		}
		if !primary {
			v.Primary = nil
		}
		if !v.empty() {
			out = append(out, v)
		}
	}
	return out
}

func (p *projection) references(key string, rs []Reference) []Reference {
	if !p.wants(key) {
		return nil
	}
	value, ref, display, typ := p.wantsSub(key, "value"), p.wantsSub(key, "$ref"), p.wantsSub(key, "display"), p.wantsSub(key, "type")
	if value && ref && display && typ {
		return rs
	}
	out := rs[:0]
	for _, r := range rs {
		if !value {
			r.Value = ""
		}
		if !ref {
			r.Ref = ""
		}
		if !display {
			r.Display = ""
		}
		if !typ {
			r.Type = ""
		}
		if !r.empty() {
			out = append(out, r)
		}
	}
	return out
}

func (p *projection) meta(m *Meta) *Meta {
	if m == nil || !p.wants("meta") {
		return nil
	}
	if !p.wantsSub("meta", "resourceType") {
		m.ResourceType = ""
	}
	if !p.wantsSub("meta", "created") {
		m.Created = nil
	}
	if !p.wantsSub("meta", "lastModified") {
		m.LastModified = nil
	}
	if !p.wantsSub("meta", "location") {
		m.Location = ""
	}
	if !p.wantsSub("meta", "version") {
		m.Version = ""
	}
	if m.empty() {
		return nil
	}
	return m
}
