// Package shell writes values into command lines that users paste into a POSIX shell, such as
// the "s3cors validate PATH" an error message suggests or the regenerate command a generated
// manifest carries.
//
// Where it sits: standard library only; used by cmd/s3cors and internal/manifest.
package shell

import "strings"

// plain are the bytes no POSIX shell treats specially anywhere in a word.
const plain = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789@%+=:,./_-"

// Quote returns s as one POSIX shell word: unchanged when it holds only bytes no shell treats
// specially, else in single quotes, a single quote inside closing the quotes, escaped, and
// reopening them. The empty string is an empty pair of single quotes.
func Quote(s string) string {
	if s != "" && strings.Trim(s, plain) == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
