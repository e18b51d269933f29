"""Drives WSMailUpImport with zeep, as a Python integration would: loads the WSDL
from the server, sends the Authentication header on both SOAP bindings, and
prints what came back as one JSON object for the Rust test to check.

Then runs an import as a CRM sync does: NewImportProcess into the group it
created, StartProcess, GetProcessDetails polled until the process is done, and
StartImportProcesses with a second document.

usage: zeep_import.py WSDL_URL USER PASSWORD LIST_ID LIST_GUID
"""
import json
import re
import sys
import time

import zeep

wsdl, user, password, list_id, list_guid = sys.argv[1:6]
client = zeep.Client(wsdl)
Authentication = client.get_element("{http://ws.mailupnet.it/}Authentication")
results = {}
for binding in ("WSMailUpImportSoap", "WSMailUpImportSoap12"):
    service = client.bind("WSMailUpImport", binding)
    auth = Authentication(User=user, Password=password, encType="UTF-8")
    result = {
        "lists": service.GetNlLists(_soapheaders=[auth]),
        "group": service.CreateGroup(
            idList=int(list_id),
            listGUID=list_guid,
            newGroupName=f"From zeep {binding}",
            _soapheaders=[auth],
        ),
    }
    try:
        service.GetNlLists(_soapheaders=[Authentication(User=user, Password="wrong")])
        result["fault"] = None
    except zeep.exceptions.Fault as fault:
        result["fault"] = fault.message
        result["fault_detail"] = "" if fault.detail is None else "".join(fault.detail.itertext())
    results[binding] = result


def return_code(document):
    return int(re.search(r"<ReturnCode>(-?\d+)</ReturnCode>", document).group(1))


def wait_until_done(service, auth, process):
    deadline = time.monotonic() + 30
    while True:
        details = service.GetProcessDetails(
            idList=int(list_id), listGUID=list_guid, idProcess=process, _soapheaders=[auth]
        )
        if "<StatusCode>3</StatusCode>" in details or time.monotonic() > deadline:
            return details
        time.sleep(0.2)


service = client.bind("WSMailUpImport", "WSMailUpImportSoap")
auth = Authentication(User=user, Password=password, encType="UTF-8")
group = return_code(results["WSMailUpImportSoap"]["group"])
flags = dict(asPending=False, ConfirmEmail=False, asOptOut=False, forceOptIn=False, replaceGroups=False)
document = (
    "<subscribers>"
    '<subscriber email="zeep1@example.com" Prefix="+39" Number="3331000001" Name="">'
    "<campo1>Zoe</campo1><campo2><![CDATA[O'Hara & Sons]]></campo2></subscriber>"
    '<subscriber email="zeep2@example.com" Prefix="" Number=""><campo1>Zed</campo1></subscriber>'
    '<subscriber email="zeep3@example.com"/>'
    "</subscribers>"
)
created = service.NewImportProcess(
    idList=int(list_id), listGUID=list_guid, xmlDoc=document, idGroups=str(group),
    importType=3, mobileInputType=2, idConfirmNL=0, _soapheaders=[auth], **flags,
)
process = return_code(created)
started = service.StartProcess(
    idList=int(list_id), listGUID=list_guid, idProcess=process, _soapheaders=[auth]
)
results["import"] = {
    "created": created,
    "started": started,
    "details": wait_until_done(service, auth, process),
    "again": service.StartProcess(
        idList=int(list_id), listGUID=list_guid, idProcess=process, _soapheaders=[auth]
    ),
    "empty": service.NewImportProcess(
        idList=int(list_id), listGUID=list_guid, xmlDoc="", idGroups="",
        importType=3, mobileInputType=1, idConfirmNL=0, _soapheaders=[auth], **flags,
    ),
    "pipe": service.NewImportProcess(
        idList=int(list_id), listGUID=list_guid,
        xmlDoc='<subscribers><subscriber email="p@example.com"><campo1>a|b</campo1></subscriber></subscribers>',
        idGroups="", importType=3, mobileInputType=1, idConfirmNL=0, _soapheaders=[auth], **flags,
    ),
}
batch = service.StartImportProcesses(
    listsIDs=list_id, listsGUIDs=list_guid, groupsIDs="",
    xmlDoc='<subscribers><subscriber email="zeep1@example.com"/><subscriber email="zeep4@example.com"/></subscribers>',
    importType=1, mobileInputType=1, _soapheaders=[auth], **flags,
)
batch_process = int(re.search(r"<processID>(\d+)</processID>", batch).group(1))
results["batch"] = {"started": batch, "details": wait_until_done(service, auth, batch_process)}
print(json.dumps(results))
