-- wrk script for benches/load.sh: sends pre-signed RFC 9421 requests, each once.
-- Each line of the file is "<Signature-Input>\t<Signature>"; thread k of n sends lines
-- k, k+n, k+2n, ... so no two requests share a nonce. Past the end it wraps around, and
-- the server answers the replays 401 (counted by wrk as non-2xx, reported by load.sh).

local threads = 0
function setup(thread)
  thread:set("tid", threads)
  threads = threads + 1
end

local lines = {}
local i = 0

function init(args)
  local file, path_arg, n = args[1], args[2], tonumber(args[3])
  path = path_arg
  nthreads = n
  for line in io.lines(file) do
    lines[#lines + 1] = line
  end
  i = tid
end

function request()
  local line = lines[(i % #lines) + 1]
  i = i + nthreads
  local input, sig = line:match("^([^\t]+)\t([^\t]+)$")
  wrk.headers["Signature-Input"] = input
  wrk.headers["Signature"] = sig
  return wrk.format("GET", path)
end
