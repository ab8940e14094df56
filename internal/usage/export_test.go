package usage

// Test hooks: what the tests read and no caller needs.

// Instance is the id this Counter writes its rows under.
func (c *Counter) Instance() string { return c.instance }

// ID is the subject's organisation and key fingerprint.
func (s *Subject) ID() SubjectID { return s.id }
