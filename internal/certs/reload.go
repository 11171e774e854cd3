package certs

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"sync"
	"time"
)

// Reloading serves a certificate, key and client CA from files and
// re-reads them when they change, so that certificates rotate without a
// restart: write the new files (the certificate and its key, in either
// order), and handshakes use them from the next check on. A set of files
// that does not load (a key written but not yet its certificate, a
// truncated file) is ignored until it does: the previous material keeps
// serving, and OnError is told.
//
// The files are checked at a handshake at most once per CheckEvery, by
// their size and modification time: no goroutine, no signal.
type Reloading struct {
	certFile, keyFile, caFile string
	// CheckEvery is the least time between two checks of the files.
	CheckEvery time.Duration
	// OnError, if set, is called when changed files do not load.
	OnError func(error)
	// OnReload, if set, is called after new files were loaded.
	OnReload func()

	mu      sync.Mutex
	checked time.Time
	stamps  [3]fileStamp
	cur     material
}

type fileStamp struct {
	size int64
	mod  time.Time
}

type material struct {
	cert *tls.Certificate
	pool *x509.CertPool // nil: no client CA
	// configs for clients without and with a required client
	// certificate.
	plain, mutual *tls.Config
}

// DefaultCheckEvery is Reloading's CheckEvery unless set.
const DefaultCheckEvery = 5 * time.Second

// NewReloading loads the files (caFile may be empty: no client CA) and
// returns a Reloading serving them.
func NewReloading(certFile, keyFile, caFile string) (*Reloading, error) {
	r := &Reloading{certFile: certFile, keyFile: keyFile, caFile: caFile, CheckEvery: DefaultCheckEvery}
	r.stamps = r.stat()
	m, err := r.load()
	if err != nil {
		return nil, err
	}
	r.cur, r.checked = m, time.Now()
	return r, nil
}

// Config returns a server configuration that asks every handshake for
// the current material. With mutual, clients must present a certificate
// of the client CA (which must then be set).
func (r *Reloading) Config(mutual bool) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			m := r.current()
			if mutual {
				return m.mutual, nil
			}
			return m.plain, nil
		},
	}
}

// current returns the material, re-reading the files if they changed
// since the last check, at most once per CheckEvery.
func (r *Reloading) current() material {
	r.mu.Lock()
	defer r.mu.Unlock()
	if time.Since(r.checked) < r.CheckEvery {
		return r.cur
	}
	r.checked = time.Now()
	st := r.stat()
	if st == r.stamps {
		return r.cur
	}
	m, err := r.load()
	if err != nil {
		// Keep the stamps: the files are tried again at the next check.
		if r.OnError != nil {
			r.OnError(err)
		}
		return r.cur
	}
	r.stamps, r.cur = st, m
	if r.OnReload != nil {
		r.OnReload()
	}
	return r.cur
}

func (r *Reloading) stat() [3]fileStamp {
	var st [3]fileStamp
	for i, f := range []string{r.certFile, r.keyFile, r.caFile} {
		if f == "" {
			continue
		}
		if fi, err := os.Stat(f); err == nil {
			st[i] = fileStamp{fi.Size(), fi.ModTime()}
		}
	}
	return st
}

func (r *Reloading) load() (material, error) {
	kp, err := LoadKeyPair(r.certFile, r.keyFile)
	if err != nil {
		return material{}, err
	}
	m := material{cert: &kp}
	if r.caFile != "" {
		if m.pool, err = LoadPool(r.caFile); err != nil {
			return material{}, err
		}
	}
	m.plain = &tls.Config{Certificates: []tls.Certificate{kp}, MinVersion: tls.VersionTLS12}
	m.mutual = m.plain.Clone()
	if m.pool != nil {
		m.mutual.ClientCAs, m.mutual.ClientAuth = m.pool, tls.RequireAndVerifyClientCert
	}
	return m, nil
}

// Current returns the certificate and the CA pool in force (the pool is
// nil without a CA file), re-reading the files if they changed, at most
// once per CheckEvery. It serves TLS configurations that Config does not
// cover, such as the raft port's, which verifies peers itself.
func (r *Reloading) Current() (*tls.Certificate, *x509.CertPool) {
	m := r.current()
	return m.cert, m.pool
}
