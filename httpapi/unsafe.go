package httpapi

import "unsafe"

// unsafeString views b as a string without copying, for encoding a list
// entry's ID that the handler lends for the duration of its callback; the
// string must not outlive that call.
func unsafeString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }
