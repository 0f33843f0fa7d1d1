package v1alpha1

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestFailureReadsTheReadyCondition(t *testing.T) {
	agent := func(gen int64, status metav1.ConditionStatus, reason string, observed int64) *Agent {
		a := &Agent{ObjectMeta: metav1.ObjectMeta{Generation: gen}}
		a.Status.Conditions = []metav1.Condition{{Type: ConditionReady, Status: status, Reason: reason,
			Message: "m", ObservedGeneration: observed}}
		return a
	}
	for _, tc := range []struct {
		name    string
		agent   *Agent
		failing bool
	}{
		{"crash loop", agent(3, metav1.ConditionFalse, "CrashLoopBackOff", 3), true},
		{"starting", agent(3, metav1.ConditionFalse, ReasonProgressing, 3), false},
		{"ready", agent(3, metav1.ConditionTrue, ReasonReady, 3), false},
		{"scaled to zero", agent(3, metav1.ConditionTrue, ReasonScaledToZero, 3), false},
		{"spec changed since", agent(4, metav1.ConditionFalse, "ImagePullBackOff", 3), false},
		{"no status yet", &Agent{}, false},
	} {
		if _, _, failing := Failure(tc.agent); failing != tc.failing {
			t.Errorf("%s: failing %v, want %v", tc.name, failing, tc.failing)
		}
	}
}
