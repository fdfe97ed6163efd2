package wasmhost

import (
	"crypto/rand"
	"sort"
	"time"
)

// wasiImpls are Envoy's WASI functions (proxy-wasm-cpp-host src/exports.cc, spec §2). They are
// registered under wasi_snapshot_preview1 and wasi_unstable, only those of the profile's set.
// Every answer is an errno; most functions are stubs: there is no file system, no socket, no
// argv, and nothing ever sleeps.
func wasiImpls(p *profileSpec) map[string]hostImpl {
	badfUnlessStdio := func(v *vm, s []uint64) {
		if fd := arg(s, 0); fd != 1 && fd != 2 {
			s[0] = errnoBadf
			return
		}
		s[0] = errnoSuccess
	}
	errno := func(e uint64) hostImpl { return func(v *vm, s []uint64) { s[0] = e } }
	m := map[string]hostImpl{
		// fd_write: fd 1 logs at info, fd 2 at error, one line per call with one trailing
		// newline removed; other fds are BADF.
		"fd_write": func(v *vm, s []uint64) { s[0] = uint64(wasiWrite(v, arg(s, 0), arg(s, 1), arg(s, 2), arg(s, 3))) },
		"fd_read":  errno(errnoNosys),
		// fd_seek and fd_close log at trace and succeed (fd_seek writes no offset).
		"fd_seek": func(v *vm, s []uint64) {
			v.host.logf(LevelTrace, SourceHost, v.label, "wasi_unstable fd_seek")
			s[0] = errnoSuccess
		},
		"fd_close": func(v *vm, s []uint64) {
			v.host.logf(LevelTrace, SourceHost, v.label, "wasi_unstable fd_close")
			s[0] = errnoSuccess
		},
		// fd_fdstat_get: for stdout/stderr a 24-byte fdstat with rights_base FD_WRITE (64).
		"fd_fdstat_get": func(v *vm, s []uint64) {
			if fd := arg(s, 0); fd != 1 && fd != 2 {
				s[0] = errnoBadf
				return
			}
			var st [24]byte
			le.PutUint64(st[8:], 64)
			// Envoy ignores a failed write here and still answers success.
			v.mem.Write(arg(s, 1), st[:])
			s[0] = errnoSuccess
		},
		// ENOSYS in both eras: Go's runtime then keeps stdio blocking, which keeps the
		// netpoller uninitialised (spec §3.6).
		"fd_fdstat_set_flags": errno(errnoNosys),
		"environ_get": func(v *vm, s []uint64) {
			arrPtr, bufPtr := arg(s, 0), arg(s, 1)
			for _, kv := range v.host.environ {
				if !v.putU32(arrPtr, bufPtr) || !v.mem.WriteString(bufPtr, kv+"\x00") {
					s[0] = errnoFault
					return
				}
				bufPtr += uint32(len(kv) + 1)
				arrPtr += 4
			}
			s[0] = errnoSuccess
		},
		"environ_sizes_get": func(v *vm, s []uint64) {
			size := 0
			for _, kv := range v.host.environ {
				size += len(kv) + 1
			}
			if !v.putU32(arg(s, 0), uint32(len(v.host.environ))) || !v.putU32(arg(s, 1), uint32(size)) {
				s[0] = errnoFault
				return
			}
			s[0] = errnoSuccess
		},
		"args_get": errno(errnoSuccess),
		"args_sizes_get": func(v *vm, s []uint64) {
			if !v.putU32(arg(s, 0), 0) || !v.putU32(arg(s, 1), 0) {
				s[0] = errnoFault
				return
			}
			s[0] = errnoSuccess
		},
		// clock_time_get: realtime (0) and monotonic (1) only; the precision is ignored.
		"clock_time_get": func(v *vm, s []uint64) {
			var t uint64
			switch arg(s, 0) {
			case 0:
				t = uint64(time.Now().UnixNano())
			case 1:
				t = uint64(time.Since(monoEpoch)) + monoBase
			default:
				s[0] = errnoNotsup
				return
			}
			if !v.putU64(arg(s, 2), t) {
				s[0] = errnoFault
				return
			}
			s[0] = errnoSuccess
		},
		// random_get: at most 64 KiB a call.
		"random_get": func(v *vm, s []uint64) {
			n := arg(s, 1)
			if n > 64*1024 {
				s[0] = errnoInval
				return
			}
			if n == 0 {
				s[0] = errnoSuccess
				return
			}
			buf, ok := v.read(arg(s, 0), n)
			if !ok {
				s[0] = errnoFault
				return
			}
			_, _ = rand.Read(buf)
			s[0] = errnoSuccess
		},
		"sched_yield": errno(errnoSuccess),
		// proc_exit logs and returns: the VM keeps running, as in Envoy.
		"proc_exit": func(v *vm, s []uint64) {
			v.host.logf(LevelTrace, SourceHost, v.label, "wasi_unstable proc_exit")
		},
		"path_open":           errno(errnoNoent),
		"fd_prestat_get":      errno(errnoBadf),
		"fd_prestat_dir_name": errno(errnoNosys),

		// The cpp-host #533 additions (Envoy 1.39).
		"fd_fdstat_set_rights":  badfUnlessStdio,
		"fd_allocate":           badfUnlessStdio,
		"fd_datasync":           badfUnlessStdio,
		"fd_sync":               badfUnlessStdio,
		"fd_filestat_set_size":  badfUnlessStdio,
		"fd_filestat_set_times": badfUnlessStdio,
		"clock_res_get": func(v *vm, s []uint64) {
			if id := arg(s, 0); id != 0 && id != 1 {
				s[0] = errnoNotsup
				return
			}
			if !v.putU64(arg(s, 1), 1) {
				s[0] = errnoFault
				return
			}
			s[0] = errnoSuccess
		},
		"fd_advise": errno(errnoSuccess),
		"fd_pread":  errno(errnoNosys),
		"fd_pwrite": func(v *vm, s []uint64) {
			if fd := arg(s, 0); fd != 1 && fd != 2 {
				s[0] = errnoBadf
				return
			}
			s[0] = uint64(wasiWrite(v, arg(s, 0), arg(s, 1), arg(s, 2), arg(s, 4)))
		},
		"fd_readdir": func(v *vm, s []uint64) {
			if !v.putU32(arg(s, 4), 0) {
				s[0] = errnoFault
				return
			}
			s[0] = errnoNotDir
		},
		"fd_renumber": func(v *vm, s []uint64) {
			fd, to := arg(s, 0), arg(s, 1)
			if (fd != 1 && fd != 2) || (to != 1 && to != 2) {
				s[0] = errnoBadf
				return
			}
			s[0] = errnoNotsup
		},
		"fd_tell": func(v *vm, s []uint64) {
			if fd := arg(s, 0); fd != 1 && fd != 2 {
				s[0] = errnoBadf
				return
			}
			if !v.putU64(arg(s, 1), 0) {
				s[0] = errnoFault
				return
			}
			s[0] = errnoSuccess
		},
		"fd_filestat_get":         errno(errnoBadf),
		"path_filestat_get":       errno(errnoNotsup),
		"path_create_directory":   errno(errnoNotsup),
		"path_filestat_set_times": errno(errnoNotsup),
		"path_link":               errno(errnoNotsup),
		"path_remove_directory":   errno(errnoNotsup),
		"path_rename":             errno(errnoNotsup),
		"path_symlink":            errno(errnoNotsup),
		"path_unlink_file":        errno(errnoNotsup),
		"path_readlink": func(v *vm, s []uint64) {
			if !v.putU32(arg(s, 5), 0) {
				s[0] = errnoFault
				return
			}
			s[0] = errnoNotsup
		},
		"sock_accept": func(v *vm, s []uint64) {
			// cpp-host writes an 8-byte zero here (setDatatype of 0UL).
			if !v.putU64(arg(s, 2), 0) {
				s[0] = errnoFault
				return
			}
			s[0] = errnoNotsup
		},
		"sock_recv": func(v *vm, s []uint64) {
			if !v.putU32(arg(s, 4), 0) || !v.mem.WriteUint16Le(arg(s, 5), 0) {
				s[0] = errnoFault
				return
			}
			s[0] = errnoNotsup
		},
		"sock_send": func(v *vm, s []uint64) {
			if !v.putU32(arg(s, 4), 0) {
				s[0] = errnoFault
				return
			}
			s[0] = errnoNotsup
		},
		"sock_shutdown": errno(errnoNotsup),
	}
	if p.pollOneoffOK {
		// cpp-host #533: no events, success, never sleeping.
		m["poll_oneoff"] = func(v *vm, s []uint64) {
			if !v.putU32(arg(s, 3), 0) {
				s[0] = errnoFault
				return
			}
			s[0] = errnoSuccess
		}
	} else {
		// Envoy 1.33-1.38: ENOSYS, nevents left untouched. Go's runtime treats that as fatal.
		m["poll_oneoff"] = errno(errnoNosys)
	}
	return m
}

// monoEpoch and monoBase give clock_time_get(monotonic) a stable origin, like Envoy's
// monotonic time source (time since an arbitrary point, not since the Unix epoch).
var (
	monoEpoch = time.Now()
	monoBase  = uint64(1e12)
)

// wasiWrite is cpp-host's writevImpl plus fd_write's nwritten store.
func wasiWrite(v *vm, fd, iovs, iovsLen, nwrittenPtr uint32) uint32 {
	var level LogLevel
	switch fd {
	case 1:
		level = LevelInfo
	case 2:
		level = LevelError
	default:
		return errnoBadf
	}
	var msg []byte
	for i := uint32(0); i < iovsLen; i++ {
		iov, ok := v.read(iovs+i*8, 8)
		if !ok {
			return errnoFault
		}
		ptr, n := le.Uint32(iov), le.Uint32(iov[4:])
		if n == 0 {
			continue
		}
		buf, ok := v.read(ptr, n)
		if !ok {
			return errnoFault
		}
		msg = append(msg, buf...)
	}
	written := uint32(len(msg))
	if written > 0 {
		if msg[len(msg)-1] == '\n' {
			msg = msg[:len(msg)-1]
		}
		src := SourceStdout
		if fd == 2 {
			src = SourceStderr
		}
		v.host.guestLog(level, src, v, string(msg))
	}
	if !v.putU32(nwrittenPtr, written) {
		return errnoFault
	}
	return errnoSuccess
}

// environList renders vm_config.environment_variables as KEY=VALUE strings, sorted by key so
// that every VM sees the same order.
func environList(env map[string]string) []string {
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = k + "=" + env[k]
	}
	return out
}
