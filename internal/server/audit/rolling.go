package audit

import (
	"context"
	"time"
)

// Rolling runs an audit with opt at once if none ever ran or opt.Period
// has passed on the audit's clock since the last (as the state database
// records it, so a restart does not audit twice), then checks again at
// every tick until ctx ends.
func (a *Auditor) Rolling(ctx context.Context, opt Options, ticks <-chan time.Time) {
	for {
		last, err := a.cfg.State.LastAudit(ctx)
		if err != nil && ctx.Err() == nil {
			a.cfg.Log.Error("audit: read the last audit", "err", err)
		}
		if err == nil && (last.IsZero() || a.cfg.Now().Sub(last) >= opt.Period) {
			res, err := a.Run(ctx, opt)
			switch {
			case err != nil && ctx.Err() == nil:
				a.cfg.Log.Error("audit failed", "err", err)
			case err == nil:
				var checked, bytes, bad, unhealed int64
				for _, c := range res.Clients {
					checked, bytes, bad, unhealed = checked+c.Checked, bytes+c.Bytes, bad+c.Bad, unhealed+c.Unhealed
				}
				a.cfg.Log.Info("audit done", "files", checked, "bytes", bytes, "bad", bad, "unhealed", unhealed,
					"took", res.Took.Round(time.Millisecond).String())
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-ticks:
		}
	}
}
