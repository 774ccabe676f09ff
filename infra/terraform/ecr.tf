# One repository per account (staging and production are separate accounts); CD pushes the
# same image, tagged with the git SHA, to both.
resource "aws_ecr_repository" "creditrisk" {
  name                 = "creditrisk"
  image_tag_mutability = "IMMUTABLE"

  image_scanning_configuration {
    scan_on_push = true
  }

  encryption_configuration {
    encryption_type = "KMS"
    kms_key         = aws_kms_key.creditrisk.arn
  }
}

resource "aws_ecr_lifecycle_policy" "creditrisk" {
  repository = aws_ecr_repository.creditrisk.name

  policy = jsonencode({
    rules = [{
      rulePriority = 1
      description  = "keep the last ${var.ecr_keep_images} images"
      selection = {
        tagStatus   = "any"
        countType   = "imageCountMoreThan"
        countNumber = var.ecr_keep_images
      }
      action = { type = "expire" }
    }]
  })
}
