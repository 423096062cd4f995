package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/fanseed/fanseed/billing"
)

// payouts runs `fanseed payouts run --period 2026-11`: every party with a connected account
// is paid what it is owed for money received by the end of the month, when that is above its
// threshold in the currency, and the period's payouts are printed.
func payouts(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) < 1 || args[0] != "run" {
		return errors.New("usage: fanseed payouts run --period 2026-11")
	}
	fs := flag.NewFlagSet("payouts run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	period := fs.String("period", "", "the month paid for, such as 2026-11 (required)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if _, err := billing.PeriodEnd(*period, time.Now()); err != nil {
		return fmt.Errorf("--period: %q must be a month that has begun, such as 2026-11", *period)
	}
	cfg, logger, pool, err := connect(ctx, getenv, stderr)
	if err != nil {
		return err
	}
	defer pool.Close()
	money, post, _, err := newMoney(cfg, pool, logger, false)
	if err != nil {
		return err
	}
	list, err := money.RunPayouts(ctx, *period, billing.PayoutOptions{})
	if err != nil {
		return err
	}
	// Each party paid is emailed once (serve's job would within seconds; this is at once).
	if _, err := newNotices(cfg, pool, post, logger).SendDue(ctx); err != nil {
		return fmt.Errorf("payout notices: %w", err)
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PAYOUT\tPARTY\tAMOUNT\tSTATUS\tTRANSFER")
	for _, p := range list {
		transfer := ""
		if p.StripeTransferID != nil {
			transfer = *p.StripeTransferID
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", p.ID, p.PartyName, p.Money(), p.Status, transfer)
	}
	tw.Flush()
	fmt.Fprintf(stdout, "%d payouts for %s\n", len(list), *period)
	return nil
}
