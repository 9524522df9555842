"""The methods the paper compares against (Table 1), as `methods.Method`s.

  classical        TV (Chambolle-Pock), LR (soft-impute SVDs, one BLAS
                   thread) and NN (the nearest training image)
  patchmatch       PatchMatch exemplar fill from the image itself (PM)
  opencv           OpenCV's cv2.inpaint (Telea, Navier-Stokes), the tool a
                   user already has (optional extra)
  context_encoder  the Context Encoder (Pathak et al., CVPR 2016): network,
                   loss, its directories and its Method ('ce'); trained by
                   training.train_context_encoder
"""
