package schema

// The definitions below are exactly what roster stores (SPEC §2.1): the
// whole RFC 7643 §4.1 User and §4.3 enterprise extension, and the Group
// of §4.2. Discovery is generated from them, and the store keeps a place
// for every attribute listed, so an attribute listed here is one a
// client can write, read back and filter on.

// Common are the attributes every resource has (RFC 7643 §3.1). Following
// the RFC they are not listed in any schema's attributes, but Lookup finds
// them.
var Common = []*Attribute{
	attr(Attribute{
		Name:        "id",
		Description: "Identifier assigned by roster: stable, opaque, and never reused, even after the resource is deleted.",
		CaseExact:   true,
		Mutability:  ReadOnly,
		Returned:    ReturnedAlways,
		Uniqueness:  UniquenessServer,
	}),
	attr(Attribute{
		Name:        "externalId",
		Description: "Identifier of the resource in the source that owns it, such as a personnel number.",
		CaseExact:   true,
	}),
	attr(Attribute{
		Name:        "meta",
		Type:        TypeComplex,
		Description: "Resource metadata.",
		Mutability:  ReadOnly,
		SubAttributes: []*Attribute{
			attr(Attribute{
				Name:        "resourceType",
				Description: "Name of the resource type: User or Group.",
				CaseExact:   true,
				Mutability:  ReadOnly,
			}),
			attr(Attribute{
				Name:        "created",
				Type:        TypeDateTime,
				Description: "When the resource was added to the directory.",
				Mutability:  ReadOnly,
			}),
			attr(Attribute{
				Name:        "lastModified",
				Type:        TypeDateTime,
				Description: "When the resource last changed.",
				Mutability:  ReadOnly,
			}),
			attr(Attribute{
				Name:           "location",
				Type:           TypeReference,
				Description:    "URI of the resource.",
				CaseExact:      true,
				Mutability:     ReadOnly,
				ReferenceTypes: []string{"uri"},
			}),
			attr(Attribute{
				Name:        "version",
				Description: "Version of the resource, also sent as its ETag.",
				CaseExact:   true,
				Mutability:  ReadOnly,
			}),
		},
	}),
}

// User is the core User schema (RFC 7643 §4.1) as roster keeps it.
var User = &Schema{
	ID:          UserURN,
	Name:        "User",
	Description: "User Account",
	Attributes: []*Attribute{
		attr(Attribute{
			Name:        "userName",
			Description: "Login name of the user, unique in the whole directory regardless of case.",
			Required:    true,
			Uniqueness:  UniquenessServer,
		}),
		attr(Attribute{
			Name:        "name",
			Type:        TypeComplex,
			Description: "Components of the user's real name.",
			SubAttributes: []*Attribute{
				attr(Attribute{
					Name:        "formatted",
					Description: "Full name formatted for display; defaults to the given name followed by the family name.",
				}),
				attr(Attribute{
					Name:        "familyName",
					Description: "Family name, or last name.",
				}),
				attr(Attribute{
					Name:        "givenName",
					Description: "Given name, or first name.",
				}),
				attr(Attribute{
					Name:        "middleName",
					Description: "Middle name or names.",
				}),
				attr(Attribute{
					Name:        "honorificPrefix",
					Description: "Honorific prefix, or title, such as \"Ms.\".",
				}),
				attr(Attribute{
					Name:        "honorificSuffix",
					Description: "Honorific suffix, such as \"III\".",
				}),
			},
		}),
		attr(Attribute{
			Name:        "displayName",
			Description: "Name of the user suitable for display; defaults to the given name followed by the family name.",
		}),
		attr(Attribute{
			Name:        "nickName",
			Description: "Casual name of the user.",
		}),
		attr(Attribute{
			Name:           "profileUrl",
			Type:           TypeReference,
			Description:    "URL of the user's online profile.",
			ReferenceTypes: []string{"external"},
		}),
		attr(Attribute{
			Name:        "title",
			Description: "The user's title, such as \"Vice President\".",
		}),
		attr(Attribute{
			Name:        "userType",
			Description: "Relationship of the user to the organization, such as \"Employee\" or \"Contractor\".",
		}),
		attr(Attribute{
			Name:        "preferredLanguage",
			Description: "Preferred written or spoken language, as an HTTP Accept-Language value such as \"en-US\".",
		}),
		attr(Attribute{
			Name:        "locale",
			Description: "Default location for localizing currency, dates and numbers, such as \"en-US\".",
		}),
		attr(Attribute{
			Name:        "timezone",
			Description: "Time zone in the IANA database, such as \"Europe/Berlin\".",
		}),
		attr(Attribute{
			Name:        "active",
			Type:        TypeBoolean,
			Description: "Whether the user may sign in; an inactive user is still returned.",
		}),
		attr(Attribute{
			Name:        "password",
			Description: "Initial or new password. Stored only as a hash and never returned.",
			Mutability:  WriteOnly,
			Returned:    ReturnedNever,
		}),
		multi(Attribute{
			Name:        "emails",
			Description: "E-mail addresses of the user; the owning source's address is the primary work address.",
			SubAttributes: []*Attribute{
				attr(Attribute{
					Name:        "value",
					Description: "E-mail address.",
				}),
				attr(Attribute{
					Name:        "display",
					Description: "Label of the address, for display.",
				}),
				attr(Attribute{
					Name:            "type",
					Description:     "Kind of address.",
					CanonicalValues: []string{"work", "home", "other"},
				}),
				attr(Attribute{
					Name:        "primary",
					Type:        TypeBoolean,
					Description: "Whether this is the preferred address; true for at most one address.",
				}),
			},
		}),
		multi(Attribute{
			Name:        "phoneNumbers",
			Description: "Phone numbers of the user, where the owning source has them.",
			SubAttributes: []*Attribute{
				attr(Attribute{
					Name:        "value",
					Description: "Phone number.",
				}),
				attr(Attribute{
					Name:        "display",
					Description: "Label of the number, for display.",
				}),
				attr(Attribute{
					Name:            "type",
					Description:     "Kind of phone number.",
					CanonicalValues: []string{"work", "home", "mobile", "fax", "pager", "other"},
				}),
				attr(Attribute{
					Name:        "primary",
					Type:        TypeBoolean,
					Description: "Whether this is the preferred number; true for at most one number.",
				}),
			},
		}),
		plural("ims", "Instant messaging addresses of the user.", "Instant messaging address.",
			"aim", "gtalk", "icq", "xmpp", "msn", "skype", "qq", "yahoo"),
		plural("photos", "URLs of photos of the user.", "URL of a photo of the user.", "photo", "thumbnail"),
		multi(Attribute{
			Name:        "addresses",
			Description: "Physical mailing addresses of the user.",
			SubAttributes: []*Attribute{
				attr(Attribute{Name: "formatted", Description: "The full mailing address, formatted for display."}),
				attr(Attribute{Name: "streetAddress", Description: "Street address: house number, street name, P.O. box."}),
				attr(Attribute{Name: "locality", Description: "City or locality."}),
				attr(Attribute{Name: "region", Description: "State or region."}),
				attr(Attribute{Name: "postalCode", Description: "Zip code or postal code."}),
				attr(Attribute{Name: "country", Description: "Country, as an ISO 3166-1 alpha-2 code such as \"DE\"."}),
				attr(Attribute{
					Name:            "type",
					Description:     "Kind of address.",
					CanonicalValues: []string{"work", "home", "other"},
				}),
				attr(Attribute{
					Name:        "primary",
					Type:        TypeBoolean,
					Description: "Whether this is the preferred address; true for at most one address.",
				}),
			},
		}),
		// Memberships are changed through the group's members, so groups
		// is read-only here, as RFC 7643 §4.1.2 has it.
		multi(Attribute{
			Name:        "groups",
			Description: "Groups the user belongs to, derived from group memberships.",
			Mutability:  ReadOnly,
			SubAttributes: []*Attribute{
				attr(Attribute{
					Name:        "value",
					Description: "id of the group.",
					Mutability:  ReadOnly,
				}),
				attr(Attribute{
					Name:           "$ref",
					Type:           TypeReference,
					Description:    "URI of the group.",
					CaseExact:      true,
					Mutability:     ReadOnly,
					ReferenceTypes: []string{"User", "Group"},
				}),
				attr(Attribute{
					Name:        "display",
					Description: "displayName of the group.",
					Mutability:  ReadOnly,
				}),
				attr(Attribute{
					Name:            "type",
					Description:     "Whether the user is a member of the group itself or through a nested group.",
					Mutability:      ReadOnly,
					CanonicalValues: []string{"direct", "indirect"},
				}),
			},
		}),
		plural("entitlements", "Entitlements of the user.", "The entitlement."),
		plural("roles", "Roles of the user.", "The role."),
		plural("x509Certificates", "X.509 certificates of the user.", "A DER-encoded X.509 certificate, in base64."),
	},
}

// Enterprise is the enterprise User extension (RFC 7643 §4.3) as roster
// keeps it.
var Enterprise = &Schema{
	ID:          EnterpriseURN,
	Name:        "EnterpriseUser",
	Description: "Enterprise User",
	Attributes: []*Attribute{
		attr(Attribute{
			Name:        "employeeNumber",
			Description: "Identifier of the person in the organization, such as a personnel number.",
		}),
		attr(Attribute{
			Name:        "costCenter",
			Description: "Name of a cost center.",
		}),
		attr(Attribute{
			Name:        "organization",
			Description: "Name of an organization.",
		}),
		attr(Attribute{
			Name:        "division",
			Description: "Name of a division.",
		}),
		attr(Attribute{
			Name:        "department",
			Description: "Name of a department; for pushed users, their first department.",
		}),
		attr(Attribute{
			Name:        "manager",
			Type:        TypeComplex,
			Description: "The user's manager, where known.",
			SubAttributes: []*Attribute{
				attr(Attribute{
					Name:        "value",
					Description: "id of the manager's User resource.",
				}),
				attr(Attribute{
					Name:           "$ref",
					Type:           TypeReference,
					Description:    "URI of the manager's User resource.",
					CaseExact:      true,
					ReferenceTypes: []string{"User"},
				}),
				attr(Attribute{
					Name:        "displayName",
					Description: "displayName of the manager.",
					Mutability:  ReadOnly,
				}),
			},
		}),
	},
}

// Group is the core Group schema (RFC 7643 §4.2) as roster keeps it.
var Group = &Schema{
	ID:          GroupURN,
	Name:        "Group",
	Description: "Group",
	Attributes: []*Attribute{
		// RFC 7643 §4.2 declares no uniqueness; roster does require a
		// display name to be unique within the source that owns the
		// group, which is narrower than "server" and so is not claimed.
		attr(Attribute{
			Name:        "displayName",
			Description: "Name of the group; unique among the groups of a csv, http or push source, where it is the group's key; groups written over SCIM may share a name.",
			Required:    true,
		}),
		multi(Attribute{
			Name:        "members",
			Description: "Members of the group: users, and groups for nested departments.",
			SubAttributes: []*Attribute{
				attr(Attribute{
					Name:        "value",
					Description: "id of the member.",
					Mutability:  Immutable,
				}),
				attr(Attribute{
					Name:           "$ref",
					Type:           TypeReference,
					Description:    "URI of the member.",
					CaseExact:      true,
					Mutability:     Immutable,
					ReferenceTypes: []string{"User", "Group"},
				}),
				attr(Attribute{
					Name:            "type",
					Description:     "Resource type of the member.",
					Mutability:      Immutable,
					CanonicalValues: []string{"User", "Group"},
				}),
				attr(Attribute{
					Name:        "display",
					Description: "Name of the member, for display.",
					Mutability:  ReadOnly,
				}),
			},
		}),
	},
}

// RosterGroup is roster's Group extension: who owns a department that a
// push source keeps (NocoBase's isOwner). Only the source writes it.
var RosterGroup = &Schema{
	ID:          RosterGroupURN,
	Name:        "RosterGroup",
	Description: "roster's Group extension: the owners of a pushed department",
	Attributes: []*Attribute{
		multi(Attribute{
			Name:        "owners",
			Description: "Users who own the department (NocoBase's isOwner); set by the push source that keeps the department.",
			Mutability:  ReadOnly,
			SubAttributes: []*Attribute{
				attr(Attribute{
					Name:        "value",
					Description: "id of the owner.",
					Mutability:  ReadOnly,
				}),
				attr(Attribute{
					Name:           "$ref",
					Type:           TypeReference,
					Description:    "URI of the owner.",
					CaseExact:      true,
					Mutability:     ReadOnly,
					ReferenceTypes: []string{"User"},
				}),
				attr(Attribute{
					Name:        "display",
					Description: "Name of the owner, for display.",
					Mutability:  ReadOnly,
				}),
			},
		}),
	},
}

// Users is the User resource type without custom attributes, served at
// /Users when the configuration declares none (see NewUsers).
var Users = NewUsers(nil)

// Groups is the Group resource type, served at /Groups.
var Groups = ResourceType{
	ID:          "Group",
	Name:        "Group",
	Endpoint:    "/Groups",
	Description: "Group",
	Schema:      GroupURN,
	Extensions:  []Extension{{Schema: RosterGroupURN, Required: false}},
	schemas:     []*Schema{Group, RosterGroup},
}

// attr fills in the defaults RFC 7643 §2.2 gives characteristics a
// definition leaves out, so that every definition states all of them
// when it is published, and the lists above show only what differs.
func attr(a Attribute) *Attribute {
	if a.Type == "" {
		a.Type = TypeString
	}
	if a.Mutability == "" {
		a.Mutability = ReadWrite
	}
	if a.Returned == "" {
		a.Returned = ReturnedDefault
	}
	if a.Uniqueness == "" {
		a.Uniqueness = UniquenessNone
	}
	return &a
}

// plural is a multi-valued attribute of RFC 7643 §4.1.2's common shape:
// value, display, type and primary.
func plural(name, description, value string, types ...string) *Attribute {
	return multi(Attribute{
		Name:        name,
		Description: description,
		SubAttributes: []*Attribute{
			attr(Attribute{Name: "value", Description: value}),
			attr(Attribute{Name: "display", Description: "Label of the value, for display."}),
			attr(Attribute{Name: "type", Description: "Kind of value.", CanonicalValues: types}),
			attr(Attribute{
				Name:        "primary",
				Type:        TypeBoolean,
				Description: "Whether this is the preferred value; true for at most one value.",
			}),
		},
	})
}

// multi is attr for a multi-valued complex attribute.
func multi(a Attribute) *Attribute {
	a.Type = TypeComplex
	a.MultiValued = true
	return attr(a)
}
