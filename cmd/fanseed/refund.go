package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/fanseed/fanseed/billing"
)

// refund runs `fanseed refund --charge ch_... [--amount 12.50] [--reason ...]`: the payment is
// refunded through Stripe (offline, through the charge.refunded event Stripe would send, stored
// and applied as the webhook's are), and what happened is printed. `fanseed refund list` prints
// the recent payments with their refunds and disputes.
func refund(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "list" {
		return refundList(ctx, getenv, stdout, stderr)
	}
	fs := flag.NewFlagSet("refund", flag.ContinueOnError)
	fs.SetOutput(stderr)
	charge := fs.String("charge", "", "the Stripe charge of the payment, ch_... (required)")
	amount := fs.String("amount", "", "how much to refund in the charge's currency, such as 12.50 (default: all that is left)")
	reason := fs.String("reason", "", "why, kept with the refund")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if strings.TrimSpace(*charge) == "" {
		return errors.New("--charge: the charge id (ch_...) is required; usage: fanseed refund --charge ch_... [--amount 12.50] [--reason TEXT]")
	}
	cfg, logger, pool, err := connect(ctx, getenv, stderr)
	if err != nil {
		return err
	}
	defer pool.Close()
	money, _, _, err := newMoney(cfg, pool, logger, false)
	if err != nil {
		return err
	}
	// Offline there is no Stripe to send the event: it is stored and applied here, as the
	// webhook endpoint and its job would.
	deliver := func(ctx context.Context, payload []byte) error {
		h, err := billing.ParseEventHeader(payload)
		if err != nil {
			return err
		}
		if _, err := money.StoreEvent(ctx, h, payload); err != nil {
			return err
		}
		return money.ApplyEvent(ctx, h.ID)
	}
	req, err := money.RequestRefund(ctx, billing.RefundAsk{Charge: *charge, Amount: *amount, Reason: *reason, By: "cli"}, deliver)
	if errors.Is(err, billing.ErrInvalid) {
		msg := strings.TrimPrefix(err.Error(), billing.ErrInvalid.Error()+": ")
		for _, field := range []string{"amount", "charge", "reason"} {
			if strings.HasPrefix(msg, field+": ") {
				return errors.New("--" + msg)
			}
		}
		return errors.New(msg)
	}
	if err != nil {
		return err
	}
	stripeID := ""
	if req.StripeRefundID != nil {
		stripeID = *req.StripeRefundID
	}
	fmt.Fprintf(stdout, "refund %d: %s of %s %s (Stripe refund %s)\n", req.ID, req.Money(), req.ChargeID, req.Status, stripeID)
	if !money.Offline() {
		fmt.Fprintln(stdout, "the ledger books it when Stripe's charge.refunded event arrives")
		return nil
	}
	p, err := billing.FindPaymentLine(ctx, pool, req.ChargeID)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "booked: %s refunded of %s, %s left\n", p.RefundedText(),
		p.AmountText(), billing.Money{Amount: p.Left(), Currency: p.Currency})
	if p.DisputeID != nil {
		fmt.Fprintf(stdout, "dispute %s: %s\n", *p.DisputeID, deref(p.DisputeStatus))
	}
	return nil
}

// refundList prints the recent payments as /admin/refunds lists them.
func refundList(ctx context.Context, getenv func(string) string, stdout, stderr io.Writer) error {
	_, _, pool, err := connect(ctx, getenv, stderr)
	if err != nil {
		return err
	}
	defer pool.Close()
	list, err := billing.RecentPayments(ctx, pool, 100)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CHARGE\tWHEN\tSHOW\tAMOUNT\tREFUNDED\tDISPUTE")
	for _, p := range list {
		dispute := ""
		if p.DisputeID != nil {
			dispute = *p.DisputeID + " " + deref(p.DisputeStatus)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", p.ChargeID, p.OccurredAt.UTC().Format("2006-01-02 15:04"), deref(p.ShowTitle),
			p.AmountText(), p.RefundedText(), dispute)
	}
	tw.Flush()
	fmt.Fprintf(stdout, "%d payments\n", len(list))
	return nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
