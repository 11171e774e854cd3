package main

import (
	"flag"
	"strconv"
	"strings"
	"time"

	"github.com/followgraph/followgraph/cluster"
	"github.com/followgraph/followgraph/webhook"
	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"
)

// webhookOptions are the --webhook-* flags.
type webhookOptions struct {
	urls     []string
	secret   string
	format   string
	sdkAppID string
	timeout  time.Duration
}

// urlsFlag is the repeatable --webhook-url (commas also separate URLs, so
// FOLLOWD_WEBHOOK_URL can name several).
type urlsFlag []string

func (u *urlsFlag) String() string { return strings.Join(*u, ",") }
func (u *urlsFlag) Set(v string) error {
	for p := range strings.SplitSeq(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			*u = append(*u, p)
		}
	}
	return nil
}

func (w *webhookOptions) register(fs *flag.FlagSet) {
	d := webhook.DefaultConfig()
	fs.Var((*urlsFlag)(&w.urls), "webhook-url", "POST every change to this `URL` from each shard's leader (repeatable; none: no webhooks)")
	fs.StringVar(&w.secret, "webhook-secret", "", "sign each webhook body with HMAC-SHA256 under this `SECRET` (header "+webhook.HeaderSignature+")")
	fs.StringVar(&w.format, "webhook-format", d.Format, "webhook bodies: tencent (Follow.CallbackAfterFollowAdd/Delete) or native (every event kind, with positions)")
	fs.StringVar(&w.sdkAppID, "webhook-sdkappid", d.SDKAppID, "SdkAppid query parameter of webhook URLs")
	fs.DurationVar(&w.timeout, "webhook-timeout", d.Timeout, "time limit of each webhook POST")
}

// hooks builds the webhooks; nil without URLs.
func (w *webhookOptions) hooks(log hclog.Logger) ([]*webhook.Hook, error) {
	if len(w.urls) == 0 {
		return nil, nil
	}
	cfg := webhook.DefaultConfig()
	cfg.URLs, cfg.Secret, cfg.Format, cfg.SDKAppID, cfg.Timeout, cfg.Logger = w.urls, w.secret, w.format, w.sdkAppID, w.timeout, log
	return webhook.New(cfg)
}

func asClusterHooks(hs []*webhook.Hook) []cluster.Hook {
	out := make([]cluster.Hook, len(hs))
	for i, h := range hs {
		out[i] = h
	}
	return out
}

// hookCollector exports each webhook's counters, and its lag on the
// shards this node leads, at scrape time.
type hookCollector struct {
	n                                       *cluster.Node
	hooks                                   []*webhook.Hook
	calls, events, failures, retries, skips *prometheus.Desc
	lag                                     *prometheus.Desc
}

func newHookCollector(n *cluster.Node, hs []*webhook.Hook) *hookCollector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, append([]string{"url"}, labels...), nil)
	}
	return &hookCollector{n: n, hooks: hs,
		calls:    d("followgraph_webhook_calls_total", "Webhook calls the endpoint accepted."),
		events:   d("followgraph_webhook_events_total", "Events in accepted webhook calls."),
		failures: d("followgraph_webhook_failures_total", "Webhook attempts that failed (an error, a timeout, an answer other than ActionStatus OK)."),
		retries:  d("followgraph_webhook_retries_total", "Webhook attempts after a failure."),
		skips:    d("followgraph_webhook_skipped_total", "Times a webhook fell behind the change feed's retention and lost events."),
		lag:      d("followgraph_webhook_lag_events", "Retained change-feed events of a shard this node leads that the webhook has not delivered (by the replicated position).", "shard"),
	}
}

func (c *hookCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.calls, c.events, c.failures, c.retries, c.skips, c.lag} {
		ch <- d
	}
}

func (c *hookCollector) Collect(ch chan<- prometheus.Metric) {
	for _, h := range c.hooks {
		s := h.Stats()
		for d, v := range map[*prometheus.Desc]uint64{c.calls: s.Calls, c.events: s.Events, c.failures: s.Failures, c.retries: s.Retries, c.skips: s.Skipped} {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), h.URL())
		}
		for i := range c.n.Shards() {
			if r := c.n.Replica(i); r != nil && r.Ready() {
				ch <- prometheus.MustNewConstMetric(c.lag, prometheus.GaugeValue, float64(r.HookLag(h.ID())), h.URL(), strconv.Itoa(i))
			}
		}
	}
}
