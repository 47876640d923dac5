// keda-kafka-lag asks KEDA's own Kafka scaler, once, what it would report for a ScaledObject
// trigger: the metadata is the trigger's (a JSON object of strings, the first argument), the
// answer one JSON line on stdout:
//
//	{"metric":"s0-kafka-features","value":250000,"target":100000,"targetType":"AverageValue","active":true}
//
// value is the metric KEDA hands the HorizontalPodAutoscaler (the group's total lag, capped
// at partitions x lagThreshold unless allowIdleConsumers), target the per-replica value the
// HPA divides it by, active whether the lag is above activationLagThreshold (below it KEDA
// holds the deployment at minReplicaCount). The replica count is the HPA's arithmetic on
// these; tests/integration/keda.rs does it in the open.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/kedacore/keda/v2/pkg/scalers"
	"github.com/kedacore/keda/v2/pkg/scalers/scalersconfig"
)

type answer struct {
	Metric     string  `json:"metric"`
	Value      float64 `json:"value"`
	Target     float64 `json:"target"`
	TargetType string  `json:"targetType"`
	Active     bool    `json:"active"`
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "keda-kafka-lag:", err)
		os.Exit(1)
	}
}

func run() error {
	if len(os.Args) != 2 {
		return fmt.Errorf("usage: keda-kafka-lag '<trigger metadata as a JSON object>'")
	}
	metadata := map[string]string{}
	if err := json.Unmarshal([]byte(os.Args[1]), &metadata); err != nil {
		return fmt.Errorf("trigger metadata: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	config := &scalersconfig.ScalerConfig{
		ScalableObjectName:      "driftwood",
		ScalableObjectNamespace: "driftwood",
		ScalableObjectType:      "ScaledObject",
		TriggerType:             "kafka",
		TriggerMetadata:         metadata,
		GlobalHTTPTimeout:       10 * time.Second,
	}
	scaler, err := scalers.NewKafkaScaler(ctx, config)
	if err != nil {
		return err
	}
	defer scaler.Close(ctx)
	spec := scaler.GetMetricSpecForScaling(ctx)[0].External
	metrics, active, err := scaler.GetMetricsAndActivity(ctx, spec.Metric.Name)
	if err != nil {
		return err
	}
	out := answer{
		Metric:     spec.Metric.Name,
		Value:      metrics[0].Value.AsApproximateFloat64(),
		TargetType: string(spec.Target.Type),
		Active:     active,
	}
	if spec.Target.AverageValue != nil {
		out.Target = spec.Target.AverageValue.AsApproximateFloat64()
	} else if spec.Target.Value != nil {
		out.Target = spec.Target.Value.AsApproximateFloat64()
	}
	return json.NewEncoder(os.Stdout).Encode(out)
}
