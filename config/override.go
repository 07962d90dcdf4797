package config

// SetListen replaces listen by addr, which came from outside the file (a
// flag or an environment variable, named by from), and checks the result
// as a loaded file is checked: the address itself and every rule that
// involves listen. The configuration is unchanged when it returns an error.
func (cfg *Config) SetListen(addr, from string) error {
	next := *cfg
	next.Listen = addr
	c := newCollector(from)
	validate(&next, c)
	if err := c.err(); err != nil {
		return err
	}
	cfg.Listen = addr
	return nil
}
