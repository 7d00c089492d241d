// Package train is thresher's online self-supervised trainer.
package train

import _ "gorgonia.org/tensor"
