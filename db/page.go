package db

// Page sizes of the paginated lists (the reference API's defaults).
const (
	DefaultPageSize = 50
	MaxPageSize     = 500
)

// Page selects one page of a list: Number counts from 1; Size is clamped to
// 1..MaxPageSize (0 = DefaultPageSize).
type Page struct {
	Number int
	Size   int
}

// limitOffset returns the SQL LIMIT and OFFSET for p.
func (p Page) limitOffset() (int, int) {
	size := p.Size
	switch {
	case size <= 0:
		size = DefaultPageSize
	case size > MaxPageSize:
		size = MaxPageSize
	}
	n := max(p.Number, 1)
	return size, (n - 1) * size
}

// likePattern escapes s for a LIKE ... ESCAPE '\' substring match.
func likePattern(s string) string {
	out := make([]byte, 0, len(s)+2)
	out = append(out, '%')
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '%' || c == '_' || c == '\\' {
			out = append(out, '\\')
		}
		out = append(out, s[i])
	}
	return string(append(out, '%'))
}
