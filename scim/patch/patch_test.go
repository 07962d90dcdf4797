package patch_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/rosterd/roster/scim/patch"
	"github.com/rosterd/roster/scim/schema"
	"github.com/rosterd/roster/scim/scimerr"
)

// EXT in test JSON stands for the enterprise extension's URN.
func x(s string) string { return strings.ReplaceAll(s, "EXT", schema.EnterpriseURN) }

const userDoc = `{
  "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "EXT"],
  "id": "u1", "userName": "anna",
  "name": {"givenName": "Anna", "familyName": "Berg"},
  "active": true,
  "emails": [{"value": "a@work.example", "type": "work", "primary": true}, {"value": "a@home.example", "type": "home"}],
  "EXT": {"department": "Research", "manager": {"value": "c1", "displayName": "Carl"}},
  "meta": {"resourceType": "User", "version": "W/\"3\""}
}`

const groupDoc = `{
  "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
  "id": "g1", "displayName": "Research",
  "members": [{"value": "u1", "display": "Anna", "type": "User"}, {"value": "u2", "display": "Bob", "type": "User"}],
  "meta": {"resourceType": "Group"}
}`

// body wraps operations in a PatchOp request.
func body(ops string) string {
	return `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[` + ops + `]}`
}

func decodeJSON(t *testing.T, s string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(x(s)), &m); err != nil {
		t.Fatalf("bad test JSON %s: %v", s, err)
	}
	return m
}

func show(v any) string {
	b, _ := json.MarshalIndent(v, "", "  ")
	return string(b)
}

type applyCase struct {
	name string
	doc  string // userDoc or groupDoc, or another starting document
	ops  string // the Operations array's elements
	want string // the resulting document
}

var userCases = []applyCase{
	// add
	{"add simple", userDoc, `{"op":"add","path":"displayName","value":"Anna B"}`, `{
	  "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "EXT"],
	  "id": "u1", "userName": "anna", "displayName": "Anna B",
	  "name": {"givenName": "Anna", "familyName": "Berg"}, "active": true,
	  "emails": [{"value": "a@work.example", "type": "work", "primary": true}, {"value": "a@home.example", "type": "home"}],
	  "EXT": {"department": "Research", "manager": {"value": "c1", "displayName": "Carl"}},
	  "meta": {"resourceType": "User", "version": "W/\"3\""}}`},
	{"add sub-attribute", userDoc, `{"op":"add","path":"name.formatted","value":"Anna Berg"}`, `{
	  "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "EXT"],
	  "id": "u1", "userName": "anna",
	  "name": {"givenName": "Anna", "familyName": "Berg", "formatted": "Anna Berg"}, "active": true,
	  "emails": [{"value": "a@work.example", "type": "work", "primary": true}, {"value": "a@home.example", "type": "home"}],
	  "EXT": {"department": "Research", "manager": {"value": "c1", "displayName": "Carl"}},
	  "meta": {"resourceType": "User", "version": "W/\"3\""}}`},
	{"add complex merges", userDoc, `{"op":"ADD","path":"Name","value":{"FamilyName":"Berg-Lund","formatted":"Anna Berg-Lund"}}`, `{
	  "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "EXT"],
	  "id": "u1", "userName": "anna",
	  "name": {"givenName": "Anna", "familyName": "Berg-Lund", "formatted": "Anna Berg-Lund"}, "active": true,
	  "emails": [{"value": "a@work.example", "type": "work", "primary": true}, {"value": "a@home.example", "type": "home"}],
	  "EXT": {"department": "Research", "manager": {"value": "c1", "displayName": "Carl"}},
	  "meta": {"resourceType": "User", "version": "W/\"3\""}}`},
	{"add multi-valued appends and skips duplicates", userDoc,
		`{"op":"add","path":"emails","value":[{"value":"A@WORK.example","type":"work"},{"value":"a@other.example","type":"other"}]}`, `{
	  "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "EXT"],
	  "id": "u1", "userName": "anna",
	  "name": {"givenName": "Anna", "familyName": "Berg"}, "active": true,
	  "emails": [{"value": "a@work.example", "type": "work", "primary": true}, {"value": "a@home.example", "type": "home"},
	             {"value": "a@other.example", "type": "other"}],
	  "EXT": {"department": "Research", "manager": {"value": "c1", "displayName": "Carl"}},
	  "meta": {"resourceType": "User", "version": "W/\"3\""}}`},
	{"add a single object to a multi-valued attribute, new primary", userDoc,
		`{"op":"add","path":"emails","value":{"value":"a@new.example","type":"work","primary":"True"}}`, `{
	  "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "EXT"],
	  "id": "u1", "userName": "anna",
	  "name": {"givenName": "Anna", "familyName": "Berg"}, "active": true,
	  "emails": [{"value": "a@work.example", "type": "work", "primary": false}, {"value": "a@home.example", "type": "home"},
	             {"value": "a@new.example", "type": "work", "primary": true}],
	  "EXT": {"department": "Research", "manager": {"value": "c1", "displayName": "Carl"}},
	  "meta": {"resourceType": "User", "version": "W/\"3\""}}`},
	{"add to a filtered element's sub-attribute", userDoc,
		`{"op":"Add","path":"emails[type eq \"work\"].value","value":"anna@work.example"}`, `{
	  "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "EXT"],
	  "id": "u1", "userName": "anna",
	  "name": {"givenName": "Anna", "familyName": "Berg"}, "active": true,
	  "emails": [{"value": "anna@work.example", "type": "work", "primary": true}, {"value": "a@home.example", "type": "home"}],
	  "EXT": {"department": "Research", "manager": {"value": "c1", "displayName": "Carl"}},
	  "meta": {"resourceType": "User", "version": "W/\"3\""}}`},
	{"add with a filter matching nothing creates the value (Entra)", userDoc,
		`{"op":"Add","path":"phoneNumbers[type eq \"mobile\"].value","value":"+49 30 1234"}`, `{
	  "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "EXT"],
	  "id": "u1", "userName": "anna",
	  "name": {"givenName": "Anna", "familyName": "Berg"}, "active": true,
	  "emails": [{"value": "a@work.example", "type": "work", "primary": true}, {"value": "a@home.example", "type": "home"}],
	  "phoneNumbers": [{"type": "mobile", "value": "+49 30 1234"}],
	  "EXT": {"department": "Research", "manager": {"value": "c1", "displayName": "Carl"}},
	  "meta": {"resourceType": "User", "version": "W/\"3\""}}`},
	{"add to a filtered element merges", userDoc,
		`{"op":"add","path":"emails[value ew \"home.example\"]","value":{"primary":true}}`, `{
	  "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "EXT"],
	  "id": "u1", "userName": "anna",
	  "name": {"givenName": "Anna", "familyName": "Berg"}, "active": true,
	  "emails": [{"value": "a@work.example", "type": "work", "primary": false}, {"value": "a@home.example", "type": "home", "primary": true}],
	  "EXT": {"department": "Research", "manager": {"value": "c1", "displayName": "Carl"}},
	  "meta": {"resourceType": "User", "version": "W/\"3\""}}`},
	{"add URN-qualified", userDoc, `{"op":"add","path":"EXT:employeeNumber","value":"E001"}`, `{
	  "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "EXT"],
	  "id": "u1", "userName": "anna",
	  "name": {"givenName": "Anna", "familyName": "Berg"}, "active": true,
	  "emails": [{"value": "a@work.example", "type": "work", "primary": true}, {"value": "a@home.example", "type": "home"}],
	  "EXT": {"department": "Research", "employeeNumber": "E001", "manager": {"value": "c1", "displayName": "Carl"}},
	  "meta": {"resourceType": "User", "version": "W/\"3\""}}`},
	{"add manager as a bare id (Entra)", userDoc, `{"op":"Add","path":"EXT:manager","value":"c2"}`, `{
	  "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "EXT"],
	  "id": "u1", "userName": "anna",
	  "name": {"givenName": "Anna", "familyName": "Berg"}, "active": true,
	  "emails": [{"value": "a@work.example", "type": "work", "primary": true}, {"value": "a@home.example", "type": "home"}],
	  "EXT": {"department": "Research", "manager": {"value": "c2"}},
	  "meta": {"resourceType": "User", "version": "W/\"3\""}}`},
	{"add path-less with dotted and URN keys", userDoc,
		`{"op":"add","value":{"name.formatted":"Anna Berg","EXT:employeeNumber":"E001","displayName":"Anna"}}`, `{
	  "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "EXT"],
	  "id": "u1", "userName": "anna", "displayName": "Anna",
	  "name": {"givenName": "Anna", "familyName": "Berg", "formatted": "Anna Berg"}, "active": true,
	  "emails": [{"value": "a@work.example", "type": "work", "primary": true}, {"value": "a@home.example", "type": "home"}],
	  "EXT": {"department": "Research", "employeeNumber": "E001", "manager": {"value": "c1", "displayName": "Carl"}},
	  "meta": {"resourceType": "User", "version": "W/\"3\""}}`},
	{"add null changes nothing", userDoc, `{"op":"add","path":"displayName","value":null}`, userDoc},
	{"add an extension attribute to a user without the extension", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"id":"u1","userName":"anna"}`,
		`{"op":"add","path":"EXT:department","value":"Sales"}`,
		`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User","EXT"],"id":"u1","userName":"anna","EXT":{"department":"Sales"}}`},

	// replace
	{"replace displayName (Entra)", userDoc, `{"op":"Replace","path":"displayName","value":"Anna Berg"}`, `{
	  "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "EXT"],
	  "id": "u1", "userName": "anna", "displayName": "Anna Berg",
	  "name": {"givenName": "Anna", "familyName": "Berg"}, "active": true,
	  "emails": [{"value": "a@work.example", "type": "work", "primary": true}, {"value": "a@home.example", "type": "home"}],
	  "EXT": {"department": "Research", "manager": {"value": "c1", "displayName": "Carl"}},
	  "meta": {"resourceType": "User", "version": "W/\"3\""}}`},
	{"replace active \"False\" (Entra)", userDoc, `{"op":"Replace","path":"active","value":"False"}`, `{
	  "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "EXT"],
	  "id": "u1", "userName": "anna",
	  "name": {"givenName": "Anna", "familyName": "Berg"}, "active": false,
	  "emails": [{"value": "a@work.example", "type": "work", "primary": true}, {"value": "a@home.example", "type": "home"}],
	  "EXT": {"department": "Research", "manager": {"value": "c1", "displayName": "Carl"}},
	  "meta": {"resourceType": "User", "version": "W/\"3\""}}`},
	{"replace path-less active false (Okta)", userDoc, `{"op":"replace","value":{"active":false}}`, `{
	  "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "EXT"],
	  "id": "u1", "userName": "anna",
	  "name": {"givenName": "Anna", "familyName": "Berg"}, "active": false,
	  "emails": [{"value": "a@work.example", "type": "work", "primary": true}, {"value": "a@home.example", "type": "home"}],
	  "EXT": {"department": "Research", "manager": {"value": "c1", "displayName": "Carl"}},
	  "meta": {"resourceType": "User", "version": "W/\"3\""}}`},
	{"replace emails[type eq \"work\"].value (Entra)", userDoc,
		`{"op":"Replace","path":"emails[type eq \"work\"].value","value":"anna.berg@work.example"}`, `{
	  "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "EXT"],
	  "id": "u1", "userName": "anna",
	  "name": {"givenName": "Anna", "familyName": "Berg"}, "active": true,
	  "emails": [{"value": "anna.berg@work.example", "type": "work", "primary": true}, {"value": "a@home.example", "type": "home"}],
	  "EXT": {"department": "Research", "manager": {"value": "c1", "displayName": "Carl"}},
	  "meta": {"resourceType": "User", "version": "W/\"3\""}}`},
	{"replace path-less with name.givenName and the enterprise department (Entra)", userDoc,
		`{"op":"Replace","value":{"name.givenName":"Ann","EXT:department":"Sales"}}`, `{
	  "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "EXT"],
	  "id": "u1", "userName": "anna",
	  "name": {"givenName": "Ann", "familyName": "Berg"}, "active": true,
	  "emails": [{"value": "a@work.example", "type": "work", "primary": true}, {"value": "a@home.example", "type": "home"}],
	  "EXT": {"department": "Sales", "manager": {"value": "c1", "displayName": "Carl"}},
	  "meta": {"resourceType": "User", "version": "W/\"3\""}}`},
	{"replace path-less with the extension URN holding an object", userDoc,
		`{"op":"replace","value":{"schemas":["x"],"id":"u1","meta":{"version":"old"},"EXT":{"department":"Sales","manager":{"value":"c2"}}}}`, `{
	  "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "EXT"],
	  "id": "u1", "userName": "anna",
	  "name": {"givenName": "Anna", "familyName": "Berg"}, "active": true,
	  "emails": [{"value": "a@work.example", "type": "work", "primary": true}, {"value": "a@home.example", "type": "home"}],
	  "EXT": {"department": "Sales", "manager": {"value": "c2"}},
	  "meta": {"resourceType": "User", "version": "W/\"3\""}}`},
	{"replace sub-attribute", userDoc, `{"op":"replace","path":"name.givenName","value":"Annie"}`, `{
	  "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "EXT"],
	  "id": "u1", "userName": "anna",
	  "name": {"givenName": "Annie", "familyName": "Berg"}, "active": true,
	  "emails": [{"value": "a@work.example", "type": "work", "primary": true}, {"value": "a@home.example", "type": "home"}],
	  "EXT": {"department": "Research", "manager": {"value": "c1", "displayName": "Carl"}},
	  "meta": {"resourceType": "User", "version": "W/\"3\""}}`},
	{"replace complex merges (RFC 7644 §3.5.2.3)", userDoc, `{"op":"replace","path":"name","value":{"familyName":"Lund"}}`, `{
	  "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "EXT"],
	  "id": "u1", "userName": "anna",
	  "name": {"givenName": "Anna", "familyName": "Lund"}, "active": true,
	  "emails": [{"value": "a@work.example", "type": "work", "primary": true}, {"value": "a@home.example", "type": "home"}],
	  "EXT": {"department": "Research", "manager": {"value": "c1", "displayName": "Carl"}},
	  "meta": {"resourceType": "User", "version": "W/\"3\""}}`},
	{"replace whole multi-valued attribute", userDoc, `{"op":"replace","path":"emails","value":[{"value":"b@x.example","type":"work"}]}`, `{
	  "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "EXT"],
	  "id": "u1", "userName": "anna",
	  "name": {"givenName": "Anna", "familyName": "Berg"}, "active": true,
	  "emails": [{"value": "b@x.example", "type": "work"}],
	  "EXT": {"department": "Research", "manager": {"value": "c1", "displayName": "Carl"}},
	  "meta": {"resourceType": "User", "version": "W/\"3\""}}`},
	{"replace filtered element whole", userDoc,
		`{"op":"replace","path":"emails[type eq \"home\" or value co \"nothing\"]","value":{"value":"h@x.example","type":"home"}}`, `{
	  "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "EXT"],
	  "id": "u1", "userName": "anna",
	  "name": {"givenName": "Anna", "familyName": "Berg"}, "active": true,
	  "emails": [{"value": "a@work.example", "type": "work", "primary": true}, {"value": "h@x.example", "type": "home"}],
	  "EXT": {"department": "Research", "manager": {"value": "c1", "displayName": "Carl"}},
	  "meta": {"resourceType": "User", "version": "W/\"3\""}}`},
	{"replace filtered by boolean and not", userDoc,
		`{"op":"replace","path":"emails[primary eq true and not (type eq \"home\")].type","value":"other"}`, `{
	  "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "EXT"],
	  "id": "u1", "userName": "anna",
	  "name": {"givenName": "Anna", "familyName": "Berg"}, "active": true,
	  "emails": [{"value": "a@work.example", "type": "other", "primary": true}, {"value": "a@home.example", "type": "home"}],
	  "EXT": {"department": "Research", "manager": {"value": "c1", "displayName": "Carl"}},
	  "meta": {"resourceType": "User", "version": "W/\"3\""}}`},
	{"replace URN-qualified manager value drops the stale display name", userDoc,
		`{"op":"replace","path":"EXT:manager.value","value":"c2"}`, `{
	  "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "EXT"],
	  "id": "u1", "userName": "anna",
	  "name": {"givenName": "Anna", "familyName": "Berg"}, "active": true,
	  "emails": [{"value": "a@work.example", "type": "work", "primary": true}, {"value": "a@home.example", "type": "home"}],
	  "EXT": {"department": "Research", "manager": {"value": "c2"}},
	  "meta": {"resourceType": "User", "version": "W/\"3\""}}`},
	{"replace unassigned attribute adds it", userDoc, `{"op":"replace","path":"externalId","value":"E001"}`, `{
	  "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "EXT"],
	  "id": "u1", "userName": "anna", "externalId": "E001",
	  "name": {"givenName": "Anna", "familyName": "Berg"}, "active": true,
	  "emails": [{"value": "a@work.example", "type": "work", "primary": true}, {"value": "a@home.example", "type": "home"}],
	  "EXT": {"department": "Research", "manager": {"value": "c1", "displayName": "Carl"}},
	  "meta": {"resourceType": "User", "version": "W/\"3\""}}`},
	{"replace with null removes", userDoc, `{"op":"replace","path":"name","value":null}`, `{
	  "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "EXT"],
	  "id": "u1", "userName": "anna", "active": true,
	  "emails": [{"value": "a@work.example", "type": "work", "primary": true}, {"value": "a@home.example", "type": "home"}],
	  "EXT": {"department": "Research", "manager": {"value": "c1", "displayName": "Carl"}},
	  "meta": {"resourceType": "User", "version": "W/\"3\""}}`},

	// remove
	{"remove simple", userDoc, `{"op":"Remove","path":"active"}`, `{
	  "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "EXT"],
	  "id": "u1", "userName": "anna",
	  "name": {"givenName": "Anna", "familyName": "Berg"},
	  "emails": [{"value": "a@work.example", "type": "work", "primary": true}, {"value": "a@home.example", "type": "home"}],
	  "EXT": {"department": "Research", "manager": {"value": "c1", "displayName": "Carl"}},
	  "meta": {"resourceType": "User", "version": "W/\"3\""}}`},
	{"remove sub-attribute", userDoc, `{"op":"remove","path":"name.givenName"}`, `{
	  "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "EXT"],
	  "id": "u1", "userName": "anna",
	  "name": {"familyName": "Berg"}, "active": true,
	  "emails": [{"value": "a@work.example", "type": "work", "primary": true}, {"value": "a@home.example", "type": "home"}],
	  "EXT": {"department": "Research", "manager": {"value": "c1", "displayName": "Carl"}},
	  "meta": {"resourceType": "User", "version": "W/\"3\""}}`},
	{"remove whole multi-valued attribute", userDoc, `{"op":"remove","path":"emails"}`, `{
	  "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "EXT"],
	  "id": "u1", "userName": "anna",
	  "name": {"givenName": "Anna", "familyName": "Berg"}, "active": true,
	  "EXT": {"department": "Research", "manager": {"value": "c1", "displayName": "Carl"}},
	  "meta": {"resourceType": "User", "version": "W/\"3\""}}`},
	{"remove filtered element", userDoc, `{"op":"remove","path":"emails[type eq \"HOME\"]"}`, `{
	  "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "EXT"],
	  "id": "u1", "userName": "anna",
	  "name": {"givenName": "Anna", "familyName": "Berg"}, "active": true,
	  "emails": [{"value": "a@work.example", "type": "work", "primary": true}],
	  "EXT": {"department": "Research", "manager": {"value": "c1", "displayName": "Carl"}},
	  "meta": {"resourceType": "User", "version": "W/\"3\""}}`},
	{"remove filtered element's sub-attribute", userDoc, `{"op":"remove","path":"emails[primary pr].primary"}`, `{
	  "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "EXT"],
	  "id": "u1", "userName": "anna",
	  "name": {"givenName": "Anna", "familyName": "Berg"}, "active": true,
	  "emails": [{"value": "a@work.example", "type": "work"}, {"value": "a@home.example", "type": "home"}],
	  "EXT": {"department": "Research", "manager": {"value": "c1", "displayName": "Carl"}},
	  "meta": {"resourceType": "User", "version": "W/\"3\""}}`},
	{"remove URN-qualified", userDoc, `{"op":"Remove","path":"EXT:manager"}`, `{
	  "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "EXT"],
	  "id": "u1", "userName": "anna",
	  "name": {"givenName": "Anna", "familyName": "Berg"}, "active": true,
	  "emails": [{"value": "a@work.example", "type": "work", "primary": true}, {"value": "a@home.example", "type": "home"}],
	  "EXT": {"department": "Research"},
	  "meta": {"resourceType": "User", "version": "W/\"3\""}}`},
	{"remove the last extension attributes drops the extension", userDoc,
		`{"op":"remove","path":"EXT:manager"},{"op":"remove","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:user:Department"}`, `{
	  "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
	  "id": "u1", "userName": "anna",
	  "name": {"givenName": "Anna", "familyName": "Berg"}, "active": true,
	  "emails": [{"value": "a@work.example", "type": "work", "primary": true}, {"value": "a@home.example", "type": "home"}],
	  "meta": {"resourceType": "User", "version": "W/\"3\""}}`},
	{"remove the whole extension", userDoc, `{"op":"remove","path":"EXT"}`, `{
	  "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
	  "id": "u1", "userName": "anna",
	  "name": {"givenName": "Anna", "familyName": "Berg"}, "active": true,
	  "emails": [{"value": "a@work.example", "type": "work", "primary": true}, {"value": "a@home.example", "type": "home"}],
	  "meta": {"resourceType": "User", "version": "W/\"3\""}}`},
	{"remove unassigned attribute changes nothing", userDoc, `{"op":"remove","path":"phoneNumbers"}`, userDoc},
	{"operations apply in order", userDoc,
		`{"op":"remove","path":"emails"},{"op":"add","path":"emails","value":[{"value":"n@x.example"}]},{"op":"replace","path":"emails[value eq \"n@x.example\"].type","value":"work"}`, `{
	  "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "EXT"],
	  "id": "u1", "userName": "anna",
	  "name": {"givenName": "Anna", "familyName": "Berg"}, "active": true,
	  "emails": [{"value": "n@x.example", "type": "work"}],
	  "EXT": {"department": "Research", "manager": {"value": "c1", "displayName": "Carl"}},
	  "meta": {"resourceType": "User", "version": "W/\"3\""}}`},
}

var groupCases = []applyCase{
	{"add members (Entra)", groupDoc, `{"op":"Add","path":"members","value":[{"value":"u3"}]}`, `{
	  "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "id": "g1", "displayName": "Research",
	  "members": [{"value": "u1", "display": "Anna", "type": "User"}, {"value": "u2", "display": "Bob", "type": "User"}, {"value": "u3"}],
	  "meta": {"resourceType": "Group"}}`},
	{"add members with display, existing member skipped (Okta)", groupDoc,
		`{"op":"add","path":"members","value":[{"value":"u1","display":"Anna Berg"},{"value":"u4","display":"Dora"}]}`, `{
	  "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "id": "g1", "displayName": "Research",
	  "members": [{"value": "u1", "display": "Anna", "type": "User"}, {"value": "u2", "display": "Bob", "type": "User"}, {"value": "u4"}],
	  "meta": {"resourceType": "Group"}}`},
	{"remove members[value eq ID] (Entra, Okta)", groupDoc, `{"op":"Remove","path":"members[value eq \"u1\"]"}`, `{
	  "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "id": "g1", "displayName": "Research",
	  "members": [{"value": "u2", "display": "Bob", "type": "User"}],
	  "meta": {"resourceType": "Group"}}`},
	{"remove members with a value (older Entra)", groupDoc,
		`{"op":"Remove","path":"members","value":[{"value":"u2"},{"value":"u9"}]}`, `{
	  "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "id": "g1", "displayName": "Research",
	  "members": [{"value": "u1", "display": "Anna", "type": "User"}],
	  "meta": {"resourceType": "Group"}}`},
	{"remove the last members", groupDoc, `{"op":"remove","path":"members[value eq \"u1\" or value eq \"u2\"]"}`, `{
	  "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "id": "g1", "displayName": "Research",
	  "meta": {"resourceType": "Group"}}`},
	{"replace members", groupDoc, `{"op":"replace","path":"members","value":[{"value":"u5","type":"User"},{"value":"u5"}]}`, `{
	  "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "id": "g1", "displayName": "Research",
	  "members": [{"value": "u5", "type": "User"}],
	  "meta": {"resourceType": "Group"}}`},
	{"rename path-less echoing id (Okta)", groupDoc, `{"op":"replace","value":{"id":"g1","displayName":"Research Lab"}}`, `{
	  "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "id": "g1", "displayName": "Research Lab",
	  "members": [{"value": "u1", "display": "Anna", "type": "User"}, {"value": "u2", "display": "Bob", "type": "User"}],
	  "meta": {"resourceType": "Group"}}`},
}

func TestApply(t *testing.T) {
	for _, set := range []struct {
		rt    schema.ResourceType
		cases []applyCase
	}{{schema.Users, userCases}, {schema.Groups, groupCases}} {
		for _, c := range set.cases {
			t.Run(set.rt.Name+"/"+c.name, func(t *testing.T) {
				req, err := patch.Decode(strings.NewReader(x(body(c.ops))), 0)
				if err != nil {
					t.Fatalf("Decode: %v", err)
				}
				doc := decodeJSON(t, c.doc)
				if err := patch.Apply(doc, set.rt, req.Operations); err != nil {
					t.Fatalf("Apply: %v", err)
				}
				// Compare the documents as JSON, as the client sees them.
				var got any
				b, err := json.Marshal(doc)
				if err != nil {
					t.Fatal(err)
				}
				if err := json.Unmarshal(b, &got); err != nil {
					t.Fatal(err)
				}
				want := decodeJSON(t, c.want)
				if !reflect.DeepEqual(got, any(want)) {
					t.Errorf("got\n%s\nwant\n%s", show(got), show(want))
				}
			})
		}
	}
}

func TestApplyErrors(t *testing.T) {
	cases := []struct {
		name     string
		rt       schema.ResourceType
		ops      string
		scimType string
		detail   string // a part of the detail
	}{
		{"unknown attribute", schema.Users, `{"op":"replace","path":"shoeSize","value":"x"}`, scimerr.TypeInvalidPath, `no attribute "shoeSize"`},
		{"unknown sub-attribute", schema.Users, `{"op":"replace","path":"name.nickName","value":"x"}`, scimerr.TypeInvalidPath, "nickName"},
		{"unknown schema", schema.Users, `{"op":"replace","path":"urn:example:custom:department","value":"x"}`, scimerr.TypeInvalidPath, ""},
		{"extension attribute on a group", schema.Groups, `{"op":"replace","path":"EXT:department","value":"x"}`, scimerr.TypeInvalidPath, ""},
		{"unknown key in a path-less value", schema.Users, `{"op":"Replace","value":{"shoeSize":"x"}}`, scimerr.TypeInvalidPath, "shoeSize"},
		{"unknown key in an extension object", schema.Users, `{"op":"Replace","value":{"EXT":{"shoeSize":"x"}}}`, scimerr.TypeInvalidPath, "shoeSize"},
		{"unknown sub-attribute in a value", schema.Users, `{"op":"add","path":"emails","value":[{"value":"x","label":"y"}]}`, scimerr.TypeInvalidPath, "label"},
		{"unknown sub-attribute in a filter", schema.Users, `{"op":"replace","path":"emails[kind eq \"work\"].value","value":"x"}`, scimerr.TypeInvalidPath, "kind"},
		{"value filter on a single-valued attribute", schema.Users, `{"op":"replace","path":"name[givenName eq \"Anna\"]","value":{}}`, scimerr.TypeInvalidPath, "single-valued"},
		{"malformed path", schema.Users, `{"op":"replace","path":"emails[type eq \"work\"","value":"x"}`, scimerr.TypeInvalidPath, "Operations[0]"},
		{"filter as path", schema.Users, `{"op":"remove","path":"userName eq \"x\""}`, scimerr.TypeInvalidPath, ""},
		{"bad op", schema.Users, `{"op":"move","path":"displayName","value":"x"}`, scimerr.TypeInvalidSyntax, `"move"`},
		{"missing op", schema.Users, `{"path":"displayName","value":"x"}`, scimerr.TypeInvalidSyntax, ""},
		{"remove without path", schema.Users, `{"op":"remove"}`, scimerr.TypeNoTarget, "path"},
		{"add without value", schema.Users, `{"op":"add","path":"displayName"}`, scimerr.TypeInvalidValue, "value"},
		{"path-less replace with a non-object", schema.Users, `{"op":"replace","value":"x"}`, scimerr.TypeInvalidValue, "object"},
		{"boolean mismatch", schema.Users, `{"op":"replace","path":"active","value":"yes"}`, scimerr.TypeInvalidValue, "active"},
		{"string mismatch", schema.Users, `{"op":"replace","path":"displayName","value":5}`, scimerr.TypeInvalidValue, "a string"},
		{"complex mismatch", schema.Users, `{"op":"replace","path":"name","value":"Anna"}`, scimerr.TypeInvalidValue, "an object"},
		{"element mismatch", schema.Users, `{"op":"add","path":"emails","value":[5]}`, scimerr.TypeInvalidValue, ""},
		{"sub-attribute mismatch", schema.Users, `{"op":"add","path":"emails","value":[{"value":"x","primary":"maybe"}]}`, scimerr.TypeInvalidValue, "emails.primary"},
		{"replace with no match", schema.Users, `{"op":"Replace","path":"emails[type eq \"other\"].value","value":"x"}`, scimerr.TypeNoTarget, "matches no value"},
		{"remove with no match", schema.Groups, `{"op":"Remove","path":"members[value eq \"u9\"]"}`, scimerr.TypeNoTarget, ""},
		{"add with no match and no eq filter", schema.Users, `{"op":"add","path":"emails[type sw \"x\"].value","value":"x"}`, scimerr.TypeNoTarget, ""},
		{"readOnly id", schema.Users, `{"op":"replace","path":"id","value":"u2"}`, scimerr.TypeMutability, "read-only"},
		{"readOnly meta sub-attribute", schema.Users, `{"op":"replace","path":"meta.version","value":"x"}`, scimerr.TypeMutability, ""},
		{"readOnly groups", schema.Users, `{"op":"add","path":"groups","value":[{"value":"g1"}]}`, scimerr.TypeMutability, ""},
		{"readOnly id changed in a path-less value", schema.Users, `{"op":"replace","value":{"id":"u2"}}`, scimerr.TypeMutability, ""},
		{"readOnly member display", schema.Groups, `{"op":"replace","path":"members[value eq \"u1\"].display","value":"x"}`, scimerr.TypeMutability, ""},
		{"immutable member value", schema.Groups, `{"op":"replace","path":"members[value eq \"u1\"].value","value":"u7"}`, scimerr.TypeMutability, "immutable"},
		{"remove required userName", schema.Users, `{"op":"remove","path":"userName"}`, scimerr.TypeMutability, "required"},
		{"replace required userName with null", schema.Users, `{"op":"replace","path":"userName","value":null}`, scimerr.TypeMutability, "required"},
		{"remove required group displayName", schema.Groups, `{"op":"remove","path":"displayName"}`, scimerr.TypeMutability, "required"},
		{"the failing operation is named", schema.Users, `{"op":"replace","path":"active","value":false},{"op":"replace","path":"shoeSize","value":"x"}`, scimerr.TypeInvalidPath, "Operations[1]"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			doc := decodeJSON(t, userDoc)
			if c.rt.Name == "Group" {
				doc = decodeJSON(t, groupDoc)
			}
			before := show(doc)
			req, err := patch.Decode(strings.NewReader(x(body(c.ops))), 0)
			if err == nil {
				err = patch.Apply(doc, c.rt, req.Operations)
			}
			var e *scimerr.Error
			if !errors.As(err, &e) {
				t.Fatalf("got %v (%T), want a *scimerr.Error", err, err)
			}
			if e.Status != 400 || e.ScimType != c.scimType || !strings.Contains(e.Detail, x(c.detail)) {
				t.Errorf("got %d %s %q, want 400 %s with %q", e.Status, e.ScimType, e.Detail, c.scimType, c.detail)
			}
			if after := show(doc); after != before {
				t.Errorf("a failed PATCH changed the document:\n%s", after)
			}
		})
	}
}

func TestDecode(t *testing.T) {
	req, err := patch.Decode(strings.NewReader(`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
	  "Operations":[{"op":"Replace","path":"active","value":"False"},{"op":"REMOVE","path":"members[value eq \"x\"]"}]}`), 2)
	if err != nil {
		t.Fatal(err)
	}
	want := []patch.Operation{
		{Op: "replace", Path: "active", Value: json.RawMessage(`"False"`)},
		{Op: "remove", Path: `members[value eq "x"]`},
	}
	if !reflect.DeepEqual(req.Operations, want) {
		t.Errorf("got %+v, want %+v", req.Operations, want)
	}

	bad := []struct{ name, in, scimType string }{
		{"not JSON", `{"schemas":`, scimerr.TypeInvalidSyntax},
		{"empty", ``, scimerr.TypeInvalidSyntax},
		{"array", `[]`, scimerr.TypeInvalidSyntax},
		{"trailing data", body(`{"op":"remove","path":"active"}`) + `{}`, scimerr.TypeInvalidSyntax},
		{"no schemas", `{"Operations":[{"op":"remove","path":"active"}]}`, scimerr.TypeInvalidSyntax},
		{"wrong schema", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"Operations":[{"op":"remove","path":"active"}]}`, scimerr.TypeInvalidSyntax},
		{"no operations", body(``), scimerr.TypeInvalidSyntax},
		{"operations not an array", `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":{}}`, scimerr.TypeInvalidSyntax},
		{"op not a string", body(`{"op":1,"path":"active"}`), scimerr.TypeInvalidSyntax},
		{"too many", body(`{"op":"remove","path":"active"},{"op":"remove","path":"active"},{"op":"remove","path":"active"}`), scimerr.TypeInvalidValue},
	}
	for _, c := range bad {
		_, err := patch.Decode(strings.NewReader(c.in), 2)
		var e *scimerr.Error
		if !errors.As(err, &e) || e.ScimType != c.scimType || e.Status != 400 {
			t.Errorf("%s: got %v, want 400 %s", c.name, err, c.scimType)
		}
	}
}

// TestApplyUnknownResourceType checks that a resource type without a known
// schema fails cleanly rather than patching blindly.
func TestApplyUnknownResourceType(t *testing.T) {
	err := patch.Apply(map[string]any{}, schema.ResourceType{Name: "Device", Schema: "urn:example:Device"},
		[]patch.Operation{{Op: "remove", Path: "x"}})
	var e *scimerr.Error
	if !errors.As(err, &e) {
		t.Fatalf("got %v", err)
	}
}
