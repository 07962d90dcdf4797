package tasks

// SetPushPart makes a push's parts n records, so that a test shows what
// one part costs next to a whole push without pushing hundreds of
// thousands of records; it returns the restore.
func SetPushPart(n int) func() {
	old := pushPart
	pushPart = n
	return func() { pushPart = old }
}
