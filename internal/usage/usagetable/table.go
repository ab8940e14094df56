// Package usagetable is the usage.Sink on Azure Table Storage (or
// Azurite).
//
// Layout: PartitionKey is the UTC day "YYYYMMDD"; RowKey is
// "org|key|HH|instance" with each part query-escaped (so '|' only
// separates). A day's report is one partition, a subject's day one
// RowKey range, and each instance writes only its own rows. Counts are
// Edm.Int64 properties named after the kinds; Org, Key, Instance and Hour
// are strings. No row holds a secret: organisation names, fingerprints,
// instance ids and counts only.
package usagetable

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/hexprox/hexprox/internal/azstorage"
	"github.com/hexprox/hexprox/internal/usage"
)

// DefaultTable is USAGE_TABLE's default.
const DefaultTable = "hexproxusage"

// properties names each kind's column, in usage.Counts order.
var properties = [usage.NumKinds]string{
	"TilesRedirected", "TilesStreamed", "BytesStreamed", "Capabilities",
	"WMSGetMap", "WMSOther", "Refused", "RateLimited", "BadRequest", "UpstreamFailed",
}

// Sink is a usage.Sink on one table. It is safe for concurrent use.
type Sink struct {
	svc   *aztables.ServiceClient
	table *aztables.Client
	name  string
}

// New returns a Sink on table (DefaultTable when "") of svc, which is
// opened the way the token table's client is (the same storage settings).
// It does no I/O; a missing table is created on first use.
func New(svc *aztables.ServiceClient, table string) *Sink {
	if table == "" {
		table = DefaultTable
	}
	return &Sink{svc: svc, table: svc.NewClient(table), name: table}
}

// EnsureTable creates the table if it does not exist.
func (s *Sink) EnsureTable(ctx context.Context) error {
	if err := azstorage.CreateTable(ctx, s.svc, s.name); err != nil {
		return fmt.Errorf("usagetable: create table %s: %s", s.name, azstorage.Reason(err))
	}
	return nil
}

func partitionKey(hour time.Time) string { return hour.UTC().Format("20060102") }

func subjectPrefix(id usage.SubjectID) string {
	return url.QueryEscape(id.Org) + "|" + url.QueryEscape(id.Key) + "|"
}

func rowKey(r usage.Row) string {
	return subjectPrefix(r.SubjectID) + r.Hour.UTC().Format("15") + "|" + url.QueryEscape(r.Instance)
}

// Write implements usage.Sink: one entity-group transaction of up to 100
// upserts per day.
func (s *Sink) Write(ctx context.Context, rows []usage.Row) error {
	byDay := make(map[string][]aztables.TransactionAction)
	var days []string
	for _, r := range rows {
		r.Hour = r.Hour.UTC().Truncate(time.Hour)
		props := map[string]any{
			"Org": r.Org, "Key": r.Key, "Instance": r.Instance, "Hour": r.Hour.Format(time.RFC3339),
		}
		for k, name := range properties {
			props[name] = aztables.EDMInt64(r.Counts[k])
		}
		pk := partitionKey(r.Hour)
		b, err := aztables.EDMEntity{Entity: aztables.Entity{PartitionKey: pk, RowKey: rowKey(r)}, Properties: props}.MarshalJSON()
		if err != nil {
			return fmt.Errorf("usagetable: %w", err)
		}
		if _, ok := byDay[pk]; !ok {
			days = append(days, pk)
		}
		byDay[pk] = append(byDay[pk], aztables.TransactionAction{ActionType: aztables.TransactionTypeInsertReplace, Entity: b})
	}
	for _, pk := range days {
		acts := byDay[pk]
		for len(acts) > 0 {
			n := min(len(acts), 100)
			if err := s.submit(ctx, acts[:n]); err != nil {
				return err
			}
			acts = acts[n:]
		}
	}
	return nil
}

func (s *Sink) submit(ctx context.Context, acts []aztables.TransactionAction) error {
	_, err := s.table.SubmitTransaction(ctx, acts, nil)
	var re *azcore.ResponseError
	// A transaction on a missing table fails as a whole, with the inner
	// error's code not always surfaced: whenever storage answered with a
	// refusal, make sure the table exists and try once more.
	if err != nil && errors.As(err, &re) {
		if cerr := s.EnsureTable(ctx); cerr == nil {
			_, err = s.table.SubmitTransaction(ctx, acts, nil)
		}
	}
	if err != nil {
		return fmt.Errorf("usagetable: write: %s", azstorage.Reason(err))
	}
	return nil
}

// Read implements usage.Source: the day partitions q spans, and a RowKey
// range when q names one subject.
func (s *Sink) Read(ctx context.Context, q usage.Query) ([]usage.Row, error) {
	if !q.From.Before(q.To) {
		return nil, nil
	}
	filter := fmt.Sprintf("PartitionKey ge '%s' and PartitionKey le '%s'", partitionKey(q.From), partitionKey(q.To.Add(-time.Nanosecond)))
	if q.Only != nil {
		p := subjectPrefix(*q.Only)
		// '}' follows '|': the range holds exactly the keys with prefix p.
		filter += fmt.Sprintf(" and RowKey ge '%s' and RowKey lt '%s'", quote(p), quote(p[:len(p)-1]+"}"))
	}
	pager := s.table.NewListEntitiesPager(&aztables.ListEntitiesOptions{Filter: &filter})
	var out []usage.Row
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			if isMissingTable(err) {
				return out, nil // nothing written yet
			}
			return nil, fmt.Errorf("usagetable: read: %s", azstorage.Reason(err))
		}
		for _, raw := range page.Entities {
			r, err := decode(raw)
			if err != nil {
				continue // not one of ours
			}
			if q.Matches(r) {
				out = append(out, r)
			}
		}
	}
	return out, nil
}

func decode(raw []byte) (usage.Row, error) {
	var e aztables.EDMEntity
	if err := e.UnmarshalJSON(raw); err != nil {
		return usage.Row{}, err
	}
	str := func(name string) string { v, _ := e.Properties[name].(string); return v }
	hour, err := time.Parse(time.RFC3339, str("Hour"))
	if err != nil {
		return usage.Row{}, err
	}
	r := usage.Row{Hour: hour.UTC(), Instance: str("Instance"), SubjectID: usage.SubjectID{Org: str("Org"), Key: str("Key")}}
	for k, name := range properties {
		switch v := e.Properties[name].(type) {
		case aztables.EDMInt64:
			r.Counts[k] = int64(v)
		case int32:
			r.Counts[k] = int64(v)
		case float64:
			r.Counts[k] = int64(v)
		}
	}
	return r, nil
}

func quote(s string) string { return strings.ReplaceAll(s, "'", "''") }

func isMissingTable(err error) bool {
	if azstorage.ErrorCode(err) == aztables.TableNotFound {
		return true
	}
	var re *azcore.ResponseError
	// A transaction on a missing table fails as a whole with 404.
	return errors.As(err, &re) && re.StatusCode == 404 && re.ErrorCode != string(aztables.ResourceNotFound)
}
