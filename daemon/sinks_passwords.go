package daemon

import (
	"context"

	"github.com/rosterd/roster/config"
)

// keepPasswords makes the store keep the initial passwords of new users
// for the sinks of cfg that ask for them (secrets.key set), and wipes
// those no sink waits for any more: a sink removed, disabled or no longer
// asking gives up its share at once.
func (d *Daemon) keepPasswords(ctx context.Context, cfg *config.Config) error {
	wanting := cfg.PasswordSinks()
	if err := d.store.KeepInitialPasswords(cfg.Secrets.KeyBytes(), wanting); err != nil {
		return err
	}
	d.sinks.passwordSinks.Store(&wanting)
	_, err := d.store.WipeInitialPasswords(ctx, wanting)
	return err
}

// wipePasswords wipes the kept passwords of users removed since they were
// kept (and of sinks gone since), with the outbox's trimming.
func (d *Daemon) wipePasswords(ctx context.Context) {
	wanting := d.sinks.passwordSinks.Load()
	if wanting == nil {
		return
	}
	if n, err := d.store.WipeInitialPasswords(ctx, *wanting); err != nil && ctx.Err() == nil {
		d.log.Warn("could not wipe the initial passwords no sink waits for", "err", err)
	} else if n > 0 {
		d.log.Debug("initial passwords wiped", "passwords", n)
	}
}
