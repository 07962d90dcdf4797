package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"strings"

	"gorm.io/gorm"
)

// ErrUnavailable marks an error of a statement that failed because the
// database could not be reached or did not answer in time (connection
// refused or cut, a closed pool, SQLITE_BUSY after its timeout, a
// deadline): the request may succeed later, so servers answer 503 with
// Retry-After rather than 500. errors.Is(err, ErrUnavailable) finds it;
// packages that must not import the store (scim) find the same errors
// through their Unavailable() method.
var ErrUnavailable = errors.New("the database is unavailable")

// IsUnavailable reports whether err says the database could not be
// reached: the transient errors, and a pool that is closed.
func IsUnavailable(err error) bool {
	if err == nil {
		return false
	}
	return errors.Is(err, ErrUnavailable) || IsTransient(err) || errors.Is(err, sql.ErrConnDone) ||
		strings.Contains(err.Error(), "sql: database is closed")
}

// unavailableError wraps a driver error that IsUnavailable recognises;
// its text is the driver's, unchanged.
type unavailableError struct{ err error }

func (e *unavailableError) Error() string { return e.err.Error() }
func (e *unavailableError) Unwrap() error { return e.err }

// Is makes errors.Is(err, ErrUnavailable) true.
func (e *unavailableError) Is(target error) bool { return target == ErrUnavailable }

// Unavailable says the database could not be reached (see ErrUnavailable).
func (e *unavailableError) Unavailable() bool { return true }

// markUnavailable wraps err when it says the database is unreachable and
// returns every other error as it is.
func markUnavailable(err error) error {
	var u *unavailableError
	if err == nil || errors.As(err, &u) || !IsUnavailable(err) {
		return err
	}
	return &unavailableError{err: err}
}

// classifying is the dialector of every Store: the driver's own, whose
// errors GORM hands to Translate as it records them (statements, begin,
// commit). Translate marks the unreachable-database ones and changes no
// other error: the driver's own translation (unique violations into
// gorm.ErrDuplicatedKey) stays off, as the store reads the driver's
// errors itself.
type classifying struct{ gorm.Dialector }

func (c classifying) Translate(err error) error { return markUnavailable(err) }

// SavePoint and RollbackTo keep nested transactions working: GORM looks
// for them on the dialector it was given.
func (c classifying) SavePoint(tx *gorm.DB, name string) error {
	if sp, ok := c.Dialector.(gorm.SavePointerDialectorInterface); ok {
		return sp.SavePoint(tx, name)
	}
	return gorm.ErrUnsupportedDriver
}

func (c classifying) RollbackTo(tx *gorm.DB, name string) error {
	if sp, ok := c.Dialector.(gorm.SavePointerDialectorInterface); ok {
		return sp.RollbackTo(tx, name)
	}
	return gorm.ErrUnsupportedDriver
}

// markingConnector marks the errors of connecting as ErrUnavailable
// (refused, reset, timed out): database/sql hands them on as they are,
// to Row().Scan too, which no GORM callback sees.
type markingConnector struct{ driver.Connector }

func (c markingConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.Connector.Connect(ctx)
	return conn, markUnavailable(err)
}

// markCallbacks marks the errors GORM's processors store without
// AddError, as the row processor behind Raw(...).Rows() does: every
// statement's error passes through one of them last.
func markCallbacks(db *gorm.DB) error {
	mark := func(db *gorm.DB) { db.Error = markUnavailable(db.Error) }
	const name = "roster:mark_unavailable"
	for _, err := range []error{
		db.Callback().Create().After("*").Register(name, mark),
		db.Callback().Query().After("*").Register(name, mark),
		db.Callback().Update().After("*").Register(name, mark),
		db.Callback().Delete().After("*").Register(name, mark),
		db.Callback().Row().After("*").Register(name, mark),
		db.Callback().Raw().After("*").Register(name, mark),
	} {
		if err != nil {
			return fmt.Errorf("register the store's error callbacks: %w", err)
		}
	}
	return nil
}

var (
	_ gorm.ErrorTranslator               = classifying{}
	_ gorm.SavePointerDialectorInterface = classifying{}
)
