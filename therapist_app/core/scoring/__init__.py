"""How a drafted reply is judged, without torch: the words it shares with a text, how it
carries out its strategy and meets the client's feeling, and the safety rules no shown
draft may break. The app's best-of-N ranking, the trainer's reward pack and the
evaluator all import these functions, so a draft is judged the same way everywhere.
"""
