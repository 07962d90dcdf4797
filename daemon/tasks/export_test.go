package tasks

// SetPushPart makes a push's parts n records, so that a test shows what
// one part costs next to a whole push without pushing hundreds of
// thousands of records; it returns the restore.
func SetPushPart(n int) func() {
	old := pushPart
	pushPart = n
	return func() { pushPart = old }
}

// Streamed reports whether a dry run was planned as a streamed sync plans
// (its changes kept aside, read back by EachChange).
func Streamed(res *Result) bool { return res.spool != nil }

// SetStreamChunk makes a streamed sync's chunks n records, so that a small
// file shows what happens across chunks; it returns the restore.
func SetStreamChunk(n int) func() {
	old := streamChunk
	streamChunk = n
	return func() { streamChunk = old }
}

// SetAfterFingerprint runs fn between a csv sync's first check of its file
// and its read; it returns the restore.
func SetAfterFingerprint(fn func()) func() {
	old := afterFingerprint
	afterFingerprint = fn
	return func() { afterFingerprint = old }
}
