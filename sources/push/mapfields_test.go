package push_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/rosterd/roster/sources"
	"github.com/rosterd/roster/sources/push"
)

// TestMapFields: custom fields a source maps become attribute values,
// checked by type; the others are named, once each and sorted.
func TestMapFields(t *testing.T) {
	p, err := push.Decode([]byte(`{"dataType":"user","records":[
		{"uid":"1","username":"a","jobTitle":" Engineer ","cc":4711,"vip":true,"shoe":"42","hobbies":["go"],"note":null},
		{"uid":"2","username":"b","shoe":"43","mail2":"x@"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	unmapped, errs := push.MapFields(p, map[string]string{"jobTitle": "title", "cc": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:costCenter",
		"vip": "userType", "mail2": `emails[type eq "work"].value`}, nil)
	if !slices.Equal(unmapped, []string{"hobbies", "shoe"}) {
		t.Errorf("unmapped %v", unmapped)
	}
	want := []sources.Attribute{{Path: "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:costCenter", Value: "4711"},
		{Path: "title", Value: "Engineer"}, {Path: "userType", Value: "true"}}
	if !slices.Equal(p.Users[0].Attributes, want) {
		t.Errorf("attributes %v, want %v", p.Users[0].Attributes, want)
	}
	if len(errs) != 1 || errs[0].Index != 1 || errs[0].Field != "mail2" || !strings.Contains(errs[0].Message, `records[1] (mail2): "x@" is not a valid e-mail address`) {
		t.Errorf("errors %v", errs)
	}
	if _, errs := push.MapFields(p, map[string]string{"hobbies": "title"}, nil); len(errs) != 1 || !strings.Contains(errs[0].Message, "must be a string, a number or a boolean") {
		t.Errorf("a mapped array: %v", errs)
	}
}

func TestLoginProfile(t *testing.T) {
	_, err := push.Decode([]byte(`{"dataType":"user","records":[{"uid":"1","username":"\uff4adoe"},{"uid":"2","username":"ok"}]}`))
	var perr *push.Error
	if !errors.As(err, &perr) || len(perr.Errors) != 1 || perr.Errors[0].Index != 0 || perr.Errors[0].Field != "username" ||
		!strings.Contains(perr.Errors[0].Message, `write it as "jdoe"`) {
		t.Errorf("a fullwidth login: %v", err)
	}
}

// TestLoginNFC: a login sent decomposed is taken in normalization form C.
func TestLoginNFC(t *testing.T) {
	b, err := push.Decode([]byte(`{"dataType":"user","records":[{"uid":"1","username":"jose\u0301"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Users) != 1 || b.Users[0].UserName == nil || *b.Users[0].UserName != "jos\u00e9" {
		t.Errorf("users %+v, want the login jos\u00e9 composed", b.Users)
	}
}
