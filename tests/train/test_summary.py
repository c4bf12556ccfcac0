"""The training report is rendered by the library (the mine-and-train task only publishes it)."""

from unsamv2.train.summary import report_rows, training_report_markdown

TRAINING = {"checkpoint_uri": "/runs/x/checkpoints/step-000010", "steps": 10, "world_size": 1,
            "trainable_parameters": 345760, "first_loss": 2.5, "final_loss": 1.25, "masks_per_second": 40.1,
            "val": {"val_iou_click1": 0.42}}
EVALUATION = {"metrics": {"scenes-objects/oracle/1-IoU": 0.123456, "scenes-objects/oracle/NoC85": 19.5,
                          "scenes-objects/oracle/mIoU@5": 0.3},
              "files": {"html": "/runs/x/report/report.html"},
              "probe": {"gt_g": 0.31, "best_fixed_g": 1.0, "best_fixed": 0.29}, "verdict": "no regression"}


def test_rows_keep_the_headline_metrics_only():
    assert report_rows(EVALUATION) == [{"metric": "scenes-objects/oracle/1-IoU", "value": 0.1235},
                                       {"metric": "scenes-objects/oracle/NoC85", "value": 19.5}]


def test_markdown_names_checkpoint_loss_metrics_probe_and_verdict():
    text = training_report_markdown(TRAINING, EVALUATION)
    assert text.startswith("# mine-and-train")
    assert "step 10, 1 worker(s), 345,760 trainable parameters" in text
    assert "Loss: 2.5 → 1.25; 40.1 masks/s; held-out IoU after 1 click 0.42" in text
    assert "| scenes-objects/oracle/NoC85 | 19.5 |" in text and "mIoU@5" not in text
    assert "ground-truth g 0.310, best fixed g=1 0.290" in text and "Regression check: no regression" in text
