package sinks

import "time"

// Quicken shortens a sink's waits for a test: between the attempts of
// one request, and in quarantine (which is a package-wide setting; it
// returns the function that puts it back).
func Quicken(s *Sink, retry, quarantine time.Duration) (restore func()) {
	s.client.backoff = retry
	was := maxBackoff
	maxBackoff = quarantine
	return func() { maxBackoff = was }
}
