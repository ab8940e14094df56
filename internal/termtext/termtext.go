// Package termtext makes text from records safe to print on an admin's
// terminal. An organisation's name, a contact or a note can come from
// another admin or from the original HexProx's vault; an escape sequence
// in one must not clear the screen, plant a link or forge a table row.
package termtext

import (
	"strconv"
	"strings"
	"unicode"
)

// Printable returns s with its control characters (escape, newline,
// tab…) escaped as Go would quote them, and everything else, non-ASCII
// letters included, as it is.
func Printable(s string) string {
	if strings.IndexFunc(s, unicode.IsControl) < 0 {
		return s
	}
	q := strconv.QuoteToGraphic(s)
	return q[1 : len(q)-1]
}
