package schemas

import "time"

// Tables written by curate.
const (
	TableAuditRecords = "audit/records"
	TableAuditSummary = "audit/summary"
	TableCurated      = "curated"
	TableCurriculum   = "curriculum"
)

// Format versions of the curate tables.
const (
	AuditRecordsVersion = 1
	AuditSummaryVersion = 1
	CuratedVersion      = 1
	CurriculumVersion   = 1
)

// Decisions of curate, one per input record.
const (
	DecisionKept           = "kept"
	DecisionExactDuplicate = "exact_duplicate"
	DecisionNearDuplicate  = "near_duplicate"
	DecisionFiltered       = "filtered"
)

// Audit holds the per-record statistics shared by the audit/records and
// curated tables (flattened into both).
type Audit struct {
	LengthChars      int32    `parquet:"length_chars"`
	LengthWords      int32    `parquet:"length_words"`
	CharEntropy      float32  `parquet:"char_entropy"`
	WordEntropy      float32  `parquet:"word_entropy"`
	CompressionRatio float32  `parquet:"compression_ratio"`
	DupLineFrac      float32  `parquet:"dup_line_frac"`
	Top2GramFrac     float32  `parquet:"top2gram_frac"`
	Top3GramFrac     float32  `parquet:"top3gram_frac"`
	Top4GramFrac     float32  `parquet:"top4gram_frac"`
	AlphaWordFrac    float32  `parquet:"alpha_word_frac"`
	StopWords        int32    `parquet:"stop_words"`
	LangGuess        string   `parquet:"lang_guess,dict"`
	Script           string   `parquet:"script,dict"`
	PIIFlags         []string `parquet:"pii_flags,list"`
	TargetSimilarity float32  `parquet:"target_similarity"`
	QualityFlags     []string `parquet:"quality_flags,list"`
	Difficulty       float32  `parquet:"difficulty"`
	CurriculumStage  int32    `parquet:"curriculum_stage"`
}

// AuditRecord is one row of audit/records: one for EVERY input record.
type AuditRecord struct {
	Topic     string    `parquet:"topic,dict"`
	Partition int32     `parquet:"partition"`
	Offset    int64     `parquet:"offset,delta"`
	KafkaTS   time.Time `parquet:"kafka_ts,timestamp(millisecond),delta"`
	ID        string    `parquet:"id,optional"`
	Source    string    `parquet:"source,optional,dict"`
	Domain    string    `parquet:"domain,optional,dict"`
	Decision  string    `parquet:"decision,dict"`
	Reason    string    `parquet:"reason,optional,dict"`
	ClusterID string    `parquet:"cluster_id"`
	DupOf     string    `parquet:"dup_of,optional"`
	Audit
}

// Curated is one row of curated: a kept record with its audit columns.
type Curated struct {
	Topic     string    `parquet:"topic,dict"`
	Partition int32     `parquet:"partition"`
	Offset    int64     `parquet:"offset,delta"`
	KafkaTS   time.Time `parquet:"kafka_ts,timestamp(millisecond),delta"`
	ID        string    `parquet:"id,optional"`
	Source    string    `parquet:"source,optional,dict"`
	Domain    string    `parquet:"domain,optional,dict"`
	Lang      string    `parquet:"lang,optional,dict"`
	Text      string    `parquet:"text"`
	Redacted  bool      `parquet:"redacted"`
	ClusterID string    `parquet:"cluster_id"`
	Audit
}

// AuditSummary is one row of audit/summary: the statistics of one window
// (one curate commit) for one domain, or for all domains ("*").
type AuditSummary struct {
	Window          int64     `parquet:"window"`
	WindowStart     time.Time `parquet:"window_start,timestamp(millisecond)"`
	WindowEnd       time.Time `parquet:"window_end,timestamp(millisecond)"`
	Domain          string    `parquet:"domain,dict"`
	Records         int64     `parquet:"records"`
	Kept            int64     `parquet:"kept"`
	ExactDuplicates int64     `parquet:"exact_duplicates"`
	NearDuplicates  int64     `parquet:"near_duplicates"`
	Filtered        int64     `parquet:"filtered"`
	DupRate         float64   `parquet:"dup_rate"`
	MeanCharEntropy float64   `parquet:"mean_char_entropy"`
	MeanWordEntropy float64   `parquet:"mean_word_entropy"`
	MeanWords       float64   `parquet:"mean_words"`
	EntropyHist     []int64   `parquet:"entropy_hist,list"`
	LengthHist      []int64   `parquet:"length_hist,list"`
	DistinctBigrams float64   `parquet:"distinct_bigram_ratio"`
	VocabSize       int64     `parquet:"vocab_size"`
	DomainShare     float64   `parquet:"domain_share"`
	CrossDomainDups int64     `parquet:"cross_domain_dups"`
	VocabOverlap    float64   `parquet:"vocab_overlap"`
	MeanTargetSim   float64   `parquet:"mean_target_similarity"`
	TargetGap       float64   `parquet:"target_gap"`
	PIIRecords      int64     `parquet:"pii_records"`
}

// CurriculumPlan is one row of curriculum: for one plan version, one stage
// of the difficulty quantiles and its place in each pacing schedule.
type CurriculumPlan struct {
	Version       int64   `parquet:"version"`
	Records       int64   `parquet:"records"`
	Stage         int32   `parquet:"stage"`
	DifficultyLo  float64 `parquet:"difficulty_lo"`
	DifficultyHi  float64 `parquet:"difficulty_hi"`
	StageRecords  int64   `parquet:"stage_records"`
	Pacing        string  `parquet:"pacing,dict"`
	StartFraction float64 `parquet:"start_fraction"`
}
