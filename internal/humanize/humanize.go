// Package humanize writes counts for people: thousands separators and
// byte sizes in decimal units, as the about page and the usage report
// show them.
package humanize

import "strconv"

// Thousands writes n with comma thousands separators: 1234567 gives
// "1,234,567", -1234 "-1,234".
func Thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	sign := ""
	if n < 0 {
		sign, s = "-", s[1:]
	}
	b := make([]byte, 0, len(s)+len(s)/3)
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			b = append(b, ',')
		}
		b = append(b, s[i])
	}
	return sign + string(b)
}

// Bytes writes a byte count in decimal (SI) units, as storage and
// network bills count them: "512 B", "100.0 kB", "1.2 MB", up to PB.
func Bytes(n int64) string {
	if n < 1000 && n > -1000 {
		return strconv.FormatInt(n, 10) + " B"
	}
	f := float64(n)
	for _, unit := range []string{"kB", "MB", "GB", "TB", "PB"} {
		f /= 1000
		if f < 999.95 && f > -999.95 || unit == "PB" {
			return strconv.FormatFloat(f, 'f', 1, 64) + " " + unit
		}
	}
	panic("unreachable")
}
