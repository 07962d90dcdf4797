package store

import "time"

// User is a directory user. UserNameKey is the lower-cased login; a partial
// unique index over it (excluding tombstones) makes logins unique in the
// whole directory, case-insensitively.
type User struct {
	ID             string `gorm:"primaryKey"`
	Source         string
	ExternalID     string
	UserName       string
	UserNameKey    string
	GivenName      string
	FamilyName     string
	DisplayName    string
	EmployeeNumber string
	Department     string
	DepartmentUID  string
	Manager        string
	Active         bool
	State          string
	StateReason    string
	PasswordHash   string
	Version        int64
	CreatedAt      time.Time
	UpdatedAt      time.Time
	DeletedAt      *time.Time
	Emails         []Email       `gorm:"foreignKey:UserID"`
	PhoneNumbers   []PhoneNumber `gorm:"foreignKey:UserID"`
}

// Email is one of a user's e-mail addresses; a source's address is the
// primary "work" one.
type Email struct {
	UserID  string `gorm:"primaryKey"`
	Value   string `gorm:"primaryKey"`
	Type    string
	Primary bool
}

// TableName keeps the table name explicit across GORM's naming rules.
func (Email) TableName() string { return "user_emails" }

// PhoneNumber is one of a user's phone numbers.
type PhoneNumber struct {
	UserID  string `gorm:"primaryKey"`
	Value   string `gorm:"primaryKey"`
	Type    string
	Primary bool
}

// TableName keeps the table name explicit across GORM's naming rules.
func (PhoneNumber) TableName() string { return "user_phone_numbers" }

// Group is a directory group, owned by one source; its display name is
// unique per source, case-insensitively.
type Group struct {
	ID             string `gorm:"primaryKey"`
	Source         string
	ExternalID     string
	DisplayName    string
	DisplayNameKey string
	Version        int64
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

// Membership puts a user or a group (nested departments) into a group.
type Membership struct {
	GroupID    string `gorm:"primaryKey"`
	MemberID   string `gorm:"primaryKey"`
	MemberType string // "User" or "Group"
}

// Source is the stored state of a configured source. Revision grows with
// every change applied to the source's part of the directory.
type Source struct {
	Name            string `gorm:"primaryKey"`
	Type            string
	Revision        int64
	LastFingerprint string
	LastSuccessAt   *time.Time
	CreatedAt       time.Time
}

// Task is one run of a source (SPEC §5). Counts, Warnings and Errors are
// JSON documents.
type Task struct {
	ID          int64 `gorm:"primaryKey;autoIncrement"`
	Source      string
	Trigger     string
	Status      string
	DryRun      bool
	Force       bool
	CreatedAt   time.Time
	StartedAt   *time.Time
	FinishedAt  *time.Time
	Counts      string
	Warnings    string
	Errors      string
	RetryOf     *int64
	RawRecord   string
	Fingerprint string
	Transient   bool
	Attempt     int
}

// HeldPlan is the plan of a task the safety valve stopped.
type HeldPlan struct {
	TaskID    int64 `gorm:"primaryKey"`
	Revision  int64
	Reason    string
	Plan      string
	CreatedAt time.Time
}
