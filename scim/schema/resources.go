package schema

// The definitions below hold only what roster stores or derives: an
// attribute listed here is one a client can rely on, and RFC 7643
// attributes roster does not keep (addresses, photos, title, locale, ...)
// are left out so that discovery stays truthful (SPEC §6).

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
			},
		}),
		attr(Attribute{
			Name:        "displayName",
			Description: "Name of the user suitable for display; defaults to the given name followed by the family name.",
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
			Name:        "department",
			Description: "The user's first department.",
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
			Description: "Name of the group; unique among the groups of the source that owns it, regardless of case.",
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

// Users is the User resource type, served at /Users.
var Users = ResourceType{
	ID:          "User",
	Name:        "User",
	Endpoint:    "/Users",
	Description: "User Account",
	Schema:      UserURN,
	Extensions:  []Extension{{Schema: EnterpriseURN, Required: false}},
}

// Groups is the Group resource type, served at /Groups.
var Groups = ResourceType{
	ID:          "Group",
	Name:        "Group",
	Endpoint:    "/Groups",
	Description: "Group",
	Schema:      GroupURN,
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

// multi is attr for a multi-valued complex attribute.
func multi(a Attribute) *Attribute {
	a.Type = TypeComplex
	a.MultiValued = true
	return attr(a)
}
