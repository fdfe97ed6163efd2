package controlplane

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Record is what the API last did to one bucket.
type Record struct {
	// CORS is the bucket's rules as GetBucketCors returns them (S3 XML); empty after
	// DeleteBucketCors.
	CORS string `json:"cors,omitempty"`
	// Seed is the digest of the seed file's entry for the bucket when the API changed it
	// (seedDigest); when the seed's entry changes later, the seed wins again.
	Seed string `json:"seed"`
}

// State is everything the API has changed: the records by bucket and a version that grows
// with every acknowledged change.
type State struct {
	Version uint64             `json:"version"`
	Buckets map[string]*Record `json:"buckets"`
}

// Store keeps the State durably.
type Store interface {
	// Load returns the stored state; a store never written returns an empty State.
	Load() (*State, error)
	// Save replaces the stored state; when it returns nil the state survives a crash.
	Save(*State) error
}

// FileStore keeps the state in one JSON file, replaced atomically: the new state goes to a
// temporary file in the same directory, which is fsynced, renamed over the file, and the
// directory fsynced, so a crash at any point leaves either the old state or the new one.
type FileStore struct {
	Path string

	// step, when set (tests), is called after each step ("write", "sync", "rename") and may
	// fail it, as a crash or a full disk would.
	step func(name string) error
}

// Load reads the state file; a missing file is an empty state.
func (s *FileStore) Load() (*State, error) {
	data, err := os.ReadFile(s.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return &State{Buckets: map[string]*Record{}}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("controlplane: state: %w", err)
	}
	st, err := decodeState(data)
	if err != nil {
		return nil, fmt.Errorf("controlplane: state file %q: %w", s.Path, err)
	}
	return st, nil
}

// decodeState reads a stored state strictly: an unknown member means a newer or foreign file.
func decodeState(data []byte) (*State, error) {
	var st State
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&st); err != nil {
		return nil, err
	}
	if st.Buckets == nil {
		st.Buckets = map[string]*Record{}
	}
	return &st, nil
}

// Save writes the state atomically and durably.
func (s *FileStore) Save(st *State) (err error) {
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("controlplane: state: %w", err)
	}
	dir := filepath.Dir(s.Path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(s.Path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("controlplane: state: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	if _, err = tmp.Write(append(data, '\n')); err != nil {
		return fmt.Errorf("controlplane: state: %w", err)
	}
	if err = s.hook("write"); err != nil {
		return err
	}
	if err = tmp.Sync(); err != nil {
		return fmt.Errorf("controlplane: state: %w", err)
	}
	if err = tmp.Close(); err != nil {
		return fmt.Errorf("controlplane: state: %w", err)
	}
	if err = s.hook("sync"); err != nil {
		return err
	}
	if err = os.Rename(tmp.Name(), s.Path); err != nil {
		return fmt.Errorf("controlplane: state: %w", err)
	}
	if err = s.hook("rename"); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("controlplane: state: %w", err)
	}
	if err = d.Sync(); err != nil {
		_ = d.Close()
		return fmt.Errorf("controlplane: state: syncing %q: %w", dir, err)
	}
	return d.Close()
}

func (s *FileStore) hook(step string) error {
	if s.step == nil {
		return nil
	}
	return s.step(step)
}
