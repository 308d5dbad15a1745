package planner

// gateCreates holds back the plan's creates until the API server has accepted the current template's
// pod (a server-side dry-run the controller runs when the plan asks for it):
//   - Accepted: the creates stay.
//   - Unchecked, or a verdict whose RecheckAt has come: no creates; the plan asks for a check on the
//     node of its first create (CheckTemplateOn), and the controller plans again with the answer.
//   - Rejected, ServiceAccountMissing or CheckFailed before its RecheckAt: no creates; the plan
//     comes back at RecheckAt.
//
// Deletes are never held back: a template that cannot be created does not keep a failed pod, or a pod
// on a node it must leave, in place. Without creates there is nothing to check and nothing to wait for.
func gateCreates(p *Plan, in Input, req *requeue) {
	p.Template = in.Template
	if in.Template.State == TemplateAccepted || len(p.Creates) == 0 {
		return
	}
	first := p.Creates[0]
	p.Creates = nil
	if in.Template.State == TemplateUnchecked || !in.Now.Before(in.Template.RecheckAt) {
		p.CheckTemplateOn = first
		return
	}
	req.at(in.Template.RecheckAt)
}
