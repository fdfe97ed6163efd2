package wasmhost

import (
	"errors"
	"fmt"

	"github.com/tetratelabs/wazero/api"
)

// moduleInfo is what Envoy reads from a module's binary before and while linking it, in the
// binary's order: wazero's CompiledModule reports exports as a map, and Envoy's ABI detection
// and its missing-import message both depend on order.
type moduleInfo struct {
	imports []importEntry
	exports []exportEntry
}

type importEntry struct {
	module, name string
	kind         byte // 0 func, 1 table, 2 memory, 3 global, 4 tag
	sig          signature
}

type exportEntry struct {
	name string
	kind byte
	sig  signature // functions only
}

const (
	externFunc   = 0x00
	externTable  = 0x01
	externMemory = 0x02
	externGlobal = 0x03
	externTag    = 0x04
)

var errCorrupt = errors.New("corrupted module")

// parseModule reads the type, import, function and export sections. It validates only what it
// reads; wazero's compiler validates the rest.
func parseModule(b []byte) (*moduleInfo, error) {
	if len(b) < 8 || string(b[:4]) != "\x00asm" || b[4] != 1 || b[5] != 0 || b[6] != 0 || b[7] != 0 {
		return nil, fmt.Errorf("%w: not a WebAssembly 1.0 binary", errCorrupt)
	}
	r := &reader{b: b, pos: 8}
	var (
		types      []signature
		funcTypes  []uint32 // type index of every function, imported ones first
		info       moduleInfo
		rawExports []rawExport
	)
	for r.pos < len(r.b) {
		id, err := r.byte()
		if err != nil {
			return nil, err
		}
		size, err := r.u32()
		if err != nil {
			return nil, err
		}
		if uint64(r.pos)+uint64(size) > uint64(len(r.b)) {
			return nil, fmt.Errorf("%w: section %d overruns the module", errCorrupt, id)
		}
		sec := &reader{b: r.b[:r.pos+int(size)], pos: r.pos}
		r.pos += int(size)
		switch id {
		case 1:
			if types, err = sec.types(); err != nil {
				return nil, err
			}
		case 2:
			n, err := sec.u32()
			if err != nil {
				return nil, err
			}
			for i := uint32(0); i < n; i++ {
				e, typeIdx, err := sec.importEntry()
				if err != nil {
					return nil, err
				}
				if e.kind == externFunc {
					if int(typeIdx) >= len(types) {
						return nil, fmt.Errorf("%w: import %q.%q has type %d out of range", errCorrupt, e.module, e.name, typeIdx)
					}
					e.sig = types[typeIdx]
					funcTypes = append(funcTypes, typeIdx)
				}
				info.imports = append(info.imports, e)
			}
		case 3:
			n, err := sec.u32()
			if err != nil {
				return nil, err
			}
			for i := uint32(0); i < n; i++ {
				t, err := sec.u32()
				if err != nil {
					return nil, err
				}
				funcTypes = append(funcTypes, t)
			}
		case 7:
			n, err := sec.u32()
			if err != nil {
				return nil, err
			}
			for i := uint32(0); i < n; i++ {
				name, err := sec.name()
				if err != nil {
					return nil, err
				}
				kind, err := sec.byte()
				if err != nil {
					return nil, err
				}
				idx, err := sec.u32()
				if err != nil {
					return nil, err
				}
				rawExports = append(rawExports, rawExport{name, kind, idx})
			}
		}
	}
	for _, e := range rawExports {
		x := exportEntry{name: e.name, kind: e.kind}
		if e.kind == externFunc {
			if int(e.index) >= len(funcTypes) || int(funcTypes[e.index]) >= len(types) {
				return nil, fmt.Errorf("%w: export %q names function %d out of range", errCorrupt, e.name, e.index)
			}
			x.sig = types[funcTypes[e.index]]
		}
		info.exports = append(info.exports, x)
	}
	return &info, nil
}

type rawExport struct {
	name  string
	kind  byte
	index uint32
}

type reader struct {
	b   []byte
	pos int
}

func (r *reader) byte() (byte, error) {
	if r.pos >= len(r.b) {
		return 0, fmt.Errorf("%w: unexpected end", errCorrupt)
	}
	c := r.b[r.pos]
	r.pos++
	return c, nil
}

func (r *reader) u32() (uint32, error) {
	var v uint32
	for shift := 0; shift < 35; shift += 7 {
		c, err := r.byte()
		if err != nil {
			return 0, err
		}
		if shift == 28 && c > 0x0f {
			return 0, fmt.Errorf("%w: LEB128 overflow", errCorrupt)
		}
		v |= uint32(c&0x7f) << shift
		if c&0x80 == 0 {
			return v, nil
		}
	}
	return 0, fmt.Errorf("%w: LEB128 overflow", errCorrupt)
}

func (r *reader) name() (string, error) {
	n, err := r.u32()
	if err != nil {
		return "", err
	}
	if uint64(r.pos)+uint64(n) > uint64(len(r.b)) {
		return "", fmt.Errorf("%w: name overruns its section", errCorrupt)
	}
	s := string(r.b[r.pos : r.pos+int(n)])
	r.pos += int(n)
	return s, nil
}

func (r *reader) types() ([]signature, error) {
	n, err := r.u32()
	if err != nil {
		return nil, err
	}
	// A function type takes at least three bytes (its form and two vector lengths), so a
	// count beyond a third of what is left is corrupt; checked before it sizes an allocation
	// (a 20-byte module claiming 100 million types cost 4.8 GB: FuzzParseModule).
	if uint64(n) > uint64(len(r.b)-r.pos)/3 {
		return nil, fmt.Errorf("%w: %d function types overrun the type section", errCorrupt, n)
	}
	out := make([]signature, 0, n)
	for i := uint32(0); i < n; i++ {
		form, err := r.byte()
		if err != nil {
			return nil, err
		}
		if form != 0x60 {
			return nil, fmt.Errorf("%w: type %d has form 0x%02x, want a function type", errCorrupt, i, form)
		}
		var s signature
		if s.params, err = r.valTypes(); err != nil {
			return nil, err
		}
		if s.results, err = r.valTypes(); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

func (r *reader) valTypes() ([]api.ValueType, error) {
	n, err := r.u32()
	if err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, nil
	}
	if uint64(n) > uint64(len(r.b)-r.pos) {
		return nil, fmt.Errorf("%w: value type vector overruns its section", errCorrupt)
	}
	out := make([]api.ValueType, n)
	for i := range out {
		if out[i], err = r.byte(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (r *reader) limits() error {
	flags, err := r.byte()
	if err != nil {
		return err
	}
	if _, err := r.u32(); err != nil {
		return err
	}
	if flags&1 != 0 {
		if _, err := r.u32(); err != nil {
			return err
		}
	}
	return nil
}

func (r *reader) importEntry() (importEntry, uint32, error) {
	var e importEntry
	var err error
	if e.module, err = r.name(); err != nil {
		return e, 0, err
	}
	if e.name, err = r.name(); err != nil {
		return e, 0, err
	}
	if e.kind, err = r.byte(); err != nil {
		return e, 0, err
	}
	switch e.kind {
	case externFunc:
		t, err := r.u32()
		return e, t, err
	case externTable:
		if _, err := r.byte(); err != nil {
			return e, 0, err
		}
		return e, 0, r.limits()
	case externMemory:
		return e, 0, r.limits()
	case externGlobal:
		if _, err := r.byte(); err != nil {
			return e, 0, err
		}
		_, err := r.byte()
		return e, 0, err
	case externTag:
		if _, err := r.byte(); err != nil {
			return e, 0, err
		}
		_, err := r.u32()
		return e, 0, err
	}
	return e, 0, fmt.Errorf("%w: import %q.%q has unknown kind 0x%02x", errCorrupt, e.module, e.name, e.kind)
}

// valTypesString renders a type list as V8's messages do: "i32 i64", or "void" when empty.
func valTypesString(ts []api.ValueType) string {
	if len(ts) == 0 {
		return "void"
	}
	s := ""
	for i, t := range ts {
		if i > 0 {
			s += " "
		}
		switch t {
		case api.ValueTypeI32:
			s += "i32"
		case api.ValueTypeI64:
			s += "i64"
		case api.ValueTypeF32:
			s += "f32"
		case api.ValueTypeF64:
			s += "f64"
		case api.ValueTypeExternref:
			s += "externref"
		case 0x70:
			s += "funcref"
		default:
			s += "unknown"
		}
	}
	return s
}

func sameTypes(a, b []api.ValueType) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func (s signature) equal(o signature) bool {
	return sameTypes(s.params, o.params) && sameTypes(s.results, o.results)
}
