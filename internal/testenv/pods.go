package testenv

import (
	"context"
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// Pods lists the pods in ns that match the label selector: all of them,
// and the ones Ready and not being deleted.
func Pods(t testing.TB, cs kubernetes.Interface, ns, selector string) (all, ready []corev1.Pod) {
	t.Helper()
	list, err := cs.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		t.Fatalf("list pods: %v", err)
	}
	for _, p := range list.Items {
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue && p.DeletionTimestamp == nil {
				ready = append(ready, p)
			}
		}
	}
	return list.Items, ready
}

// DescribePods says in one line where each pod stands, for what a test
// awaits or a failure message.
func DescribePods(ps []corev1.Pod) string {
	s := make([]string, 0, len(ps))
	for _, p := range ps {
		s = append(s, fmt.Sprintf("%s(%s ip=%s deleting=%v)", p.Name, p.Status.Phase, p.Status.PodIP, p.DeletionTimestamp != nil))
	}
	return strings.Join(s, " ")
}
