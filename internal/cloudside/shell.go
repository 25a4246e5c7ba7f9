package cloudside

import (
	"strings"
)

// shellQuote makes s one word for a POSIX shell: bare when it holds only characters no shell
// treats specially, single-quoted otherwise.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789@%+=:,./_-") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// command writes one shell command, one argument per line after the first words.
type command struct {
	b *strings.Builder
}

func newCommand(b *strings.Builder, words ...string) command {
	for i, w := range words {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(w)
	}
	return command{b: b}
}

// flag adds "--name value" with value quoted.
func (c command) flag(name, value string) command {
	c.b.WriteString(" \\\n  ")
	c.b.WriteString(name)
	c.b.WriteByte(' ')
	c.b.WriteString(shellQuote(value))
	return c
}

// placeholder adds "--name '<WHAT>'": a value the user must fill in, quoted so that a shell never
// reads it as a redirection.
func (c command) placeholder(name, what string) command {
	c.b.WriteString(" \\\n  ")
	c.b.WriteString(name)
	c.b.WriteString(" '<")
	c.b.WriteString(what)
	c.b.WriteString(">'")
	return c
}

func (c command) end() { c.b.WriteString("\n") }
