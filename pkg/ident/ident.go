// Package ident checks the textual form of identifiers shared across the mesh.
package ident

// IsUUID reports whether s is a UUID in its canonical 8-4-4-4-12 hexadecimal form (either case),
// the only form the API accepts and the stores hold. Callers use it to answer NOT_FOUND or
// INVALID_ARGUMENT for a malformed id without a query.
func IsUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
				return false
			}
		}
	}
	return true
}
