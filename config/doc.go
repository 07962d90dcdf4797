// Package config loads, defaults and validates roster's YAML configuration.
//
// # Loading
//
// [Load] reads one YAML file; [Parse] does the same for bytes already read.
// Loading runs in a fixed order:
//
//  1. the file is parsed into a YAML node tree (one document only);
//  2. secrets and environment variables are expanded in that tree, so every
//     line number stays the line of the file;
//  3. the tree is decoded strictly onto a [Config] that already holds every
//     default, and each item of sources starts from the source defaults;
//  4. relative paths are made absolute against the config file's folder;
//  5. the result is validated.
//
// Every problem found by any step is collected; the caller gets them all at
// once in an [*Error], each [Problem] naming the line and the key. A missing
// file is an I/O error wrapping [io/fs.ErrNotExist], so that `roster serve`
// can fall back to [Default]. An empty file is a valid configuration: all
// defaults and no sources.
//
// Strict decoding is done by walking the node tree rather than by yaml.v3's
// Decoder.KnownFields: that flag is lost inside UnmarshalYAML methods (it
// would not reach the items of sources) and yaml.v3 reports a line but never
// the key path, nor a key that is valid for one source type but not another.
//
// # Keys
//
// Problems name keys by their path in the file, with 0-based list indexes:
// `sources[1].schedule`, `tokens[0].scopes[2]`. Unknown keys are errors, and
// so are keys of another source type (`url` on a csv source). A key whose
// value is null (`tls:` with nothing after it, or `~`) counts as not set and
// keeps its default; an explicit empty string ("") is a value.
// YAML anchors, aliases and merge keys (`<<: *defaults`) work as in YAML 1.1,
// which makes shared source settings easy to write; top-level keys that
// start with "x-" are ignored so that they can hold such anchors:
//
//	x-nightly: &nightly {schedule: "0 2 * * *", orphans: delete}
//	sources:
//	  - {<<: *nightly, name: staff, type: csv, path: staff.csv}
//
// # Secrets and environment variables
//
// In every scalar value (never in keys):
//
//   - ${NAME} is replaced by the environment variable NAME, which must be set
//     (it may be set to the empty string). NAME is letters, digits and '_',
//     not starting with a digit; there are no defaults or other shell forms.
//   - ${file:PATH} is replaced by the contents of the file PATH, relative to
//     the config file's folder, without its trailing newlines. The file must
//     be a regular file of at most 64 KiB (Kubernetes secret mounts and
//     systemd credentials fit).
//   - $${ stands for a literal ${.
//   - Any other $ stays as it is, so DSNs and passwords need no escaping.
//
// Inside a flow mapping ({...}) quote a value that holds a reference, as in
// `auth: {bearer: "${HR_TOKEN}"}`: YAML reads the braces there otherwise.
// Expansion happens once: a value read from a variable or file is never
// expanded again. An expanded value is still typed by its key, so
// `max_retries: ${RETRIES}` works. Problems never quote the values of
// secret-bearing keys (dsn, bearer, password, client_secret, headers, url,
// token hashes), so they are safe to log.
//
// # Sources
//
// Source names appear in file paths (log/user-data-sync/NAME/), URLs and
// token scopes, so they must match ^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$, and two
// names may not differ only in letter case. Each type accepts its own keys
// besides name, type and enabled:
//
//   - csv: path, watch, password_min_length and the snapshot keys;
//   - http: url, method, headers, auth, records, next, map, timeout, retries
//     and the snapshot keys;
//   - push: on_delete, on_conflict;
//   - scim: nothing else; at most one scim source may exist.
//
// The snapshot keys are schedule, orphans, activate_new, restore,
// max_removals, allow_empty and on_conflict. Every source carries the
// defaults of all types; settings of other types are simply not used.
// on_conflict is fail, skip or adopt: adopt takes over a user of another
// source whose login (or, for push, matchKey value) a record finds,
// keeping its id (SPEC §4.4).
// A schedule is optional: without one a source syncs only when triggered
// (file change, upload, manual sync). Schedules use robfig/cron's standard
// five-field syntax and its descriptors (@hourly, @every 10m); seconds are
// not accepted. The folder of a csv path must exist; the file itself may
// appear later. Push token scopes (push:NAME) must name a configured push
// source.
//
// # Values
//
// Durations are Go durations (90m, 720h, 1h30m) with one addition: a leading
// whole number of days, as in 30d or 1d12h. Durations that bound a lifetime
// (purge_deleted_after, keep_raw, keep, timeout) must be greater than zero.
//
// Byte sizes are a whole number with an optional, case-sensitive unit: B,
// KiB, MiB, GiB, TiB (powers of 1024) or KB, MB, GB, TB (powers of 1000);
// a bare number is bytes.
//
// max_removals is a percentage ("10%", fractions allowed, at most 100%) or a
// whole number of users. [Removals.Limit] computes the allowed number of
// removals; the rule that five or fewer removals never trip the valve is the
// reconcile engine's.
//
// Relative paths (a csv path, log.dir, the TLS files and an SQLite DSN that
// is a plain path) are resolved against the config file's folder. SQLite
// DSNs that are ":memory:" or "file:" URIs are passed on unchanged.
package config
