package remediate

import "time"

// ledger is what a dry-run delivery would have claimed and taken: the
// cooldowns and the budget (and, for every delivery, what it read and the
// Events of its holds). It makes a dry-run of two pods of one
// Deployment answer "would act" and "held: cooldown", as a real run
// would, though dry-run writes nothing. A ledger belongs to one delivery,
// whose alerts are decided one after the other.
type ledger struct {
	claims  map[string]time.Time
	actions int
	// disruptions counts would-be disruptive actions per disruption
	// bucket (a namespace, the nodes, a node pool), and
	// stormTargets the targets that would have needed one.
	disruptions  map[string]int
	stormTargets map[string]bool
	// reads is what the delivery has read (a real run's too), events the
	// held decisions' Events it has yet to write.
	reads  *reads
	events *heldEvents
}

func newLedger() *ledger {
	return &ledger{claims: map[string]time.Time{}, disruptions: map[string]int{}, stormTargets: map[string]bool{},
		reads: newReads(), events: &heldEvents{}}
}

func ledgerKey(ref ObjectRef, remediator string) string { return ref.String() + "|" + remediator }

// claim records a would-be claim; false when one is already recorded.
func (l *ledger) claim(ref ObjectRef, remediator string, now time.Time) bool {
	k := ledgerKey(ref, remediator)
	if _, ok := l.claims[k]; ok {
		return false
	}
	l.claims[k] = now
	return true
}

func (l *ledger) claimed(ref ObjectRef, remediator string) bool {
	_, ok := l.claims[ledgerKey(ref, remediator)]
	return ok
}
