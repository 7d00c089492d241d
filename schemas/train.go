package schemas

import "time"

// Tables written by the trainer.
const (
	// TableTrainHistory holds the trainer's losses and health figures, one row
	// per optimiser step, one object per flush: train/history/<first step>.parquet
	// (see the package documentation for which rows are final).
	TableTrainHistory = "train/history"
	// TableEval holds periodic evaluation results and promotion decisions:
	// eval/<step>.parquet, one object per evaluated checkpoint.
	TableEval = "eval"
)

// Format versions of the trainer tables.
const (
	TrainHistoryVersion = 2
	EvalVersion         = 1
)

// TrainHistory is one row of train/history: the trainer's figures at one step.
type TrainHistory struct {
	Step         int64     `parquet:"step,delta"`
	Time         time.Time `parquet:"time,timestamp(millisecond),delta"`
	ExamplesSeen int64     `parquet:"examples_seen,delta"`
	TokensSeen   int64     `parquet:"tokens_seen,delta"`
	LR           float32   `parquet:"lr"`
	Loss         float32   `parquet:"loss"`
	LossInfoNCE  float32   `parquet:"loss_infonce"`
	LossMLM      float32   `parquet:"loss_mlm"`
	Accuracy     float32   `parquet:"accuracy"`
	Std          float32   `parquet:"std"`
	Alignment    float32   `parquet:"alignment"`
	Uniformity   float32   `parquet:"uniformity"`
	RankMe       float32   `parquet:"rankme"`
	Stage        int32     `parquet:"curriculum_stage"`
	Collapsed    bool      `parquet:"collapsed"`
	DriftMixTV   float32   `parquet:"drift_mix_tv"` // version 2 on; 0 when read from version 1
	DriftAlert   bool      `parquet:"drift_alert"`  // version 2 on
}

// Eval is one row of the eval table: one metric of one task at one label
// budget for one checkpoint, or (Metric "decision") the promotion decision.
type Eval struct {
	Step           int64     `parquet:"step,delta"`
	Time           time.Time `parquet:"time,timestamp(millisecond)"`
	Checkpoint     string    `parquet:"checkpoint"`
	Task           string    `parquet:"task,dict"`
	Features       string    `parquet:"features,dict"`
	Classifier     string    `parquet:"classifier,dict"`
	LabelsPerClass int32     `parquet:"labels_per_class"` // 0 means all
	Metric         string    `parquet:"metric,dict"`
	Value          float64   `parquet:"value"`
	Std            float64   `parquet:"std"`
	Draws          int32     `parquet:"draws"`
	Promoted       bool      `parquet:"promoted"`
	Reason         string    `parquet:"reason"`
	Baseline       int64     `parquet:"baseline_step"` // step of the promoted checkpoint compared with, -1 none
}
