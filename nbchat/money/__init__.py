"""Money (level 2): what an answer cost, from a price table you set or from pydantic's
genai-prices (historical prices by the answer's time, cached-input, off-peak and batch rates);
an answer nbchat cannot price is *unknown*, never $0; and sums of costs that say so.

May import: level 0 and ``nbchat.wire``. Third party: genai-prices, lazily, only here.
"""
