package origin

// Test hooks: what the tests read and no caller needs.

// Empty reports whether the list allows no origin at all.
func (l List) Empty() bool { return !l.any && len(l.patterns) == 0 }
