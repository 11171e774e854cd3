package main

import (
	"errors"
	"fmt"
	"sync"

	"github.com/followgraph/followgraph/codes"
	"github.com/followgraph/followgraph/internal/tokens"
	"github.com/followgraph/followgraph/wire"
	"github.com/prometheus/client_golang/prometheus"
)

// loadTokens reads the tokens followd's flags name: the token file's, and
// --token's as the admin token "default". Both may be given: a cluster's
// nodes present --token to each other, so a node with a token file still
// needs it (see docs/OPERATIONS.md). It returns nil when neither is set:
// no authentication.
func loadTokens(o *options) ([]tokens.Token, error) {
	var toks []tokens.Token
	if o.tokenFile != "" {
		var err error
		if toks, err = tokens.ReadFile(o.tokenFile); err != nil {
			return nil, err
		}
		if len(toks) == 0 && o.token == "" {
			// An empty file would refuse every client; that is more
			// likely a mistake than a wish.
			return nil, fmt.Errorf("%s: no tokens", o.tokenFile)
		}
	}
	if o.token != "" {
		for _, t := range toks {
			if t.Name == tokens.DefaultName {
				return nil, fmt.Errorf("%s: token %q is --token's; rename it or drop --token", o.tokenFile, tokens.DefaultName)
			}
		}
		toks = append(toks, tokens.New(tokens.DefaultName, tokens.RoleAdmin, o.token))
	}
	return toks, nil
}

// errNoTokenFile answers a reload of a daemon started without
// --token-file.
var errNoTokenFile = errors.New("no --token-file to reload")

// reloadTokens reads the token file again and puts it in force. On an
// error the tokens in force stay as they were. Connections whose token
// was removed or changed are refused at their next request (40004) and
// closed; the others carry on, and unchanged tokens keep their rate
// budgets.
func (d *daemon) reloadTokens() error {
	if d.opts.tokenFile == "" {
		return errNoTokenFile
	}
	toks, err := loadTokens(d.opts)
	if err == nil {
		err = d.tokens.Replace(toks)
	}
	if err != nil {
		d.log.Error("token file not reloaded; the tokens in force stay", "file", d.opts.tokenFile, "error", err)
		return err
	}
	d.log.Info("token file reloaded", "file", d.opts.tokenFile, "tokens", len(toks))
	return nil
}

// tokenMetrics count client requests by token and expose each token's
// configured limits, read from the store at scrape time so that a reload
// shows at once.
type tokenMetrics struct {
	requests *prometheus.CounterVec
	// counters caches the children of requests by tokenResult: every
	// client request is counted, and a label lookup hashes its strings.
	counters sync.Map
	store    *tokens.Store // nil: no tokens
	rate     *prometheus.Desc
	burst    *prometheus.Desc
	role     *prometheus.Desc
}

func newTokenMetrics() *tokenMetrics {
	return &tokenMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "followgraph_token_requests_total",
			Help: "Client requests checked against their token, by token name and result: allowed, rate_limited (40011) or not_allowed (40012).",
		}, []string{"token", "result"}),
		rate:  prometheus.NewDesc("followgraph_token_rate_limit", "Configured rate limit of each token in force, in requests per second (0: unlimited).", []string{"token"}, nil),
		burst: prometheus.NewDesc("followgraph_token_burst", "Configured burst of each token in force (0: unlimited).", []string{"token"}, nil),
		role:  prometheus.NewDesc("followgraph_token_info", "Always 1 for each token in force; the role label names its role.", []string{"token", "role"}, nil),
	}
}

// tokenResult keys the cache of counters.
type tokenResult struct {
	token  string
	result string
}

func (t *tokenMetrics) observe(token string, code codes.Code) {
	k := tokenResult{token, "allowed"}
	switch code {
	case codes.RateLimited:
		k.result = "rate_limited"
	case codes.NotAllowed:
		k.result = "not_allowed"
	}
	c, ok := t.counters.Load(k)
	if !ok {
		c, _ = t.counters.LoadOrStore(k, t.requests.WithLabelValues(k.token, k.result))
	}
	c.(prometheus.Counter).Inc()
}

// Describe implements prometheus.Collector.
func (t *tokenMetrics) Describe(ch chan<- *prometheus.Desc) {
	t.requests.Describe(ch)
	ch <- t.rate
	ch <- t.burst
	ch <- t.role
}

// Collect implements prometheus.Collector.
func (t *tokenMetrics) Collect(ch chan<- prometheus.Metric) {
	t.requests.Collect(ch)
	if t.store == nil {
		return
	}
	for _, e := range t.store.Entries() {
		ch <- prometheus.MustNewConstMetric(t.rate, prometheus.GaugeValue, e.Rate, e.Name)
		ch <- prometheus.MustNewConstMetric(t.burst, prometheus.GaugeValue, float64(e.Burst), e.Name)
		ch <- prometheus.MustNewConstMetric(t.role, prometheus.GaugeValue, 1, e.Name, e.Role.String())
	}
}

// TokenRequest implements wire.Observer.
func (m *metrics) TokenRequest(token string, _ wire.Op, code codes.Code) {
	m.tokens.observe(token, code)
}

// openTokens loads the tokens of the flags into the daemon's store and
// shows them in m.
func (d *daemon) openTokens(m *metrics) error {
	toks, err := loadTokens(d.opts)
	if err != nil || toks == nil {
		return err
	}
	if d.tokens, err = tokens.NewStore(toks); err != nil {
		return err
	}
	m.tokens.store = d.tokens
	return nil
}
