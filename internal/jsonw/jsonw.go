// Package jsonw appends JSON to byte slices without reflection, for the admission hot path where
// lanyard writes a handful of small, fixed shapes (patch operations, the AdmissionReview response).
// Output is what encoding/json produces for the same values, except that '<', '>' and '&' are not
// HTML-escaped (both are valid JSON); tests compare the two.
package jsonw

import (
	"unicode/utf8"
)

const hex = "0123456789abcdef"

// String appends s as a JSON string. Invalid UTF-8 becomes U+FFFD, as with encoding/json.
func String(dst []byte, s string) []byte {
	return append(StringContent(append(dst, '"'), s), '"')
}

// StringContent appends s JSON-escaped without the surrounding quotes, so that one JSON string can
// be written from several pieces without concatenating them first.
func StringContent(dst []byte, s string) []byte {
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		// U+2028 and U+2029 are valid JSON but encoding/json escapes them for JavaScript.
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hex[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	return append(dst, s[start:]...)
}

// Field appends `"name":` preceded by a comma unless it is the first member.
func Field(dst []byte, first bool, name string) []byte {
	if !first {
		dst = append(dst, ',')
	}
	dst = append(dst, '"')
	dst = append(dst, name...)
	return append(dst, '"', ':')
}

// StringField appends `"name":"value"`.
func StringField(dst []byte, first bool, name, value string) []byte {
	return String(Field(dst, first, name), value)
}
