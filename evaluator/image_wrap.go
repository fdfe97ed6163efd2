package evaluator

import (
	"bytes"
	"encoding/base64"
	"strconv"
)

// ImageKey is the one member of the JSON document that carries a policy image as text, for
// channels that take JSON only (Istio's WasmPlugin pluginConfig):
//
//	{"s3corsImage": "<the image in standard base64, padded>"}
//
// No configuration document has this member (unknown members are refused), so neither can
// be taken for the other.
const ImageKey = "s3corsImage"

// LoadAny loads whatever s3cors accepts as a plugin configuration: a policy image (as
// LoadImage), an image wrapped in JSON ({"s3corsImage": "<base64>"}, see ImageKey) or a
// configuration document (as Load). The policy may keep data: do not modify it afterwards.
func LoadAny(data []byte) (*Policy, error) {
	if IsImage(data) {
		return LoadImage(data)
	}
	if text, ok, err := imageWrapper(data); ok {
		if err != nil {
			return nil, err
		}
		image, err := decodeImageText(text)
		if err != nil {
			return nil, err
		}
		return LoadImage(image)
	}
	return Load(data)
}

// WrapImage returns image as the JSON document LoadAny unwraps.
func WrapImage(image []byte) []byte {
	out := make([]byte, 0, len(ImageKey)+base64.StdEncoding.EncodedLen(len(image))+8)
	out = append(out, `{"`+ImageKey+`": "`...)
	out = base64.StdEncoding.AppendEncode(out, image)
	return append(out, "\"}\n"...)
}

// imageWrapper reports whether data is an image wrapper (a JSON object whose first member
// is ImageKey) and returns its string's raw text. A wrapper is held to its one shape: the
// member's value a string, and nothing after it.
func imageWrapper(data []byte) (text []byte, ok bool, err error) {
	rest := bytes.TrimLeft(data, blanks)
	if len(rest) == 0 || rest[0] != '{' {
		return nil, false, nil
	}
	rest = bytes.TrimLeft(rest[1:], blanks)
	if !bytes.HasPrefix(rest, []byte(`"`+ImageKey+`"`)) {
		return nil, false, nil
	}
	bad := func(what string) ([]byte, bool, error) {
		return nil, true, imageError(`the wrapper must be exactly {"%s": "<base64>"}: %s`, ImageKey, what)
	}
	rest = bytes.TrimLeft(rest[len(ImageKey)+2:], blanks)
	if len(rest) == 0 || rest[0] != ':' {
		return bad(`no ":" after "` + ImageKey + `"`)
	}
	rest = bytes.TrimLeft(rest[1:], blanks)
	if len(rest) == 0 || rest[0] != '"' {
		return bad("its value is not a string")
	}
	end := bytes.IndexByte(rest[1:], '"')
	if end < 0 {
		return bad("its string is not closed")
	}
	text = rest[1 : 1+end]
	// A JSON writer may escape "/" as "\/"; an escaped quote cannot occur in base64.
	tail := bytes.TrimLeft(rest[2+end:], blanks)
	if len(tail) == 0 || tail[0] != '}' {
		return bad("something other than \"}\" follows the image (the wrapper has one member)")
	}
	if t := bytes.TrimLeft(tail[1:], blanks); len(t) != 0 {
		return bad(strconv.Itoa(len(t)) + " bytes follow the closing \"}\"")
	}
	return text, true, nil
}

// decodeImageText decodes a wrapper's base64, refusing one whose image would be over
// MaxImageSize before allocating for it.
func decodeImageText(text []byte) ([]byte, error) {
	if n := base64.StdEncoding.DecodedLen(len(text)); n > MaxImageSize+3 {
		return nil, imageError("the wrapped image, about %d bytes, is over the %d-byte limit (MaxImageSize)", n, MaxImageSize)
	}
	if bytes.IndexByte(text, '\\') >= 0 {
		text = bytes.ReplaceAll(text, []byte(`\/`), []byte(`/`))
	}
	image := make([]byte, base64.StdEncoding.DecodedLen(len(text)))
	n, err := base64.StdEncoding.Decode(image, text)
	if err != nil {
		return nil, imageError("the wrapper's %q is not standard base64: %w", ImageKey, err)
	}
	return image[:n], nil
}
